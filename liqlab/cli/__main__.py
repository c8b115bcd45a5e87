"""``python -m liqlab.cli``: the ``liqlab`` command line."""

import sys

from liqlab.cli import main

sys.exit(main())
