"""``python -m revgate``: the ``revgate`` command."""

import sys

from .cli import main

sys.exit(main())
