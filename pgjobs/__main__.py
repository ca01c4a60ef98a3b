"""`python -m pgjobs`: the command line."""

import sys

from pgjobs._cli import main

sys.exit(main())
