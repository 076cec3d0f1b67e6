"""``python -m pydenoise.cli``: the ``pydenoise`` command."""

import sys

from pydenoise.cli import main

sys.exit(main())
