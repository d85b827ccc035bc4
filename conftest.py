"""Root pytest configuration: the environment every test and every nbval kernel inherits."""

import os

# Progress bars are noise in a notebook's stored outputs; nbval's kernels inherit this variable.
os.environ.setdefault("TQDM_DISABLE", "1")
