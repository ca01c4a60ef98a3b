"""`python -m pgjobs`: the command line."""

import sys

from pgjobs.cli import main

sys.exit(main())
