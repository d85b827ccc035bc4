"""``python -m minirec`` is the ``minirec`` command (see :mod:`minirec.cli`)."""

import sys

from minirec.cli import main

sys.exit(main())
