"""Root pytest configuration: the environment every test and every nbval kernel inherits."""

import os
from pathlib import Path

#: What nbval masks before it compares outputs: printed round-off (tests/nbval_sanitize.cfg).
NBVAL_SANITIZE = Path(__file__).parent / "tests" / "nbval_sanitize.cfg"

# Progress bars are noise in a notebook's stored outputs; nbval's kernels inherit this variable.
os.environ.setdefault("TQDM_DISABLE", "1")


def pytest_configure(config):
    """Strict nbval compares every output, but round-off digits differ between CPUs: mask them
    (unless the command line names another sanitize file)."""
    if getattr(config.option, "nbval_sanitize_with", "absent") is None:
        config.option.nbval_sanitize_with = str(NBVAL_SANITIZE)


def pytest_generate_tests(metafunc):
    """Parametrize the methods of a ``tests.mutants.CheckContract`` subclass over its table of
    exercises: by exercise name, by (name, mutant) and by (name, suspect index)."""
    exercises = getattr(metafunc.cls, "EXERCISES", None)
    if not exercises:
        return
    if "mutant" in metafunc.fixturenames:
        pairs = [(name, m) for name, spec in exercises.items() for m in spec[2].MUTANTS]
        metafunc.parametrize("name,mutant", pairs, ids=[f"{n}-{m.name}" for n, m in pairs])
    elif "suspect_index" in metafunc.fixturenames:
        pairs = [(name, i) for name, spec in exercises.items()
                 for i in range(len(spec[3]().suspects))]
        metafunc.parametrize("name,suspect_index", pairs, ids=[f"{n}-{i}" for n, i in pairs])
    elif "name" in metafunc.fixturenames:
        metafunc.parametrize("name", list(exercises))
