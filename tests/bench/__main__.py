"""`python -m tests.bench ARGS`: `python -m pgjobs ARGS` with the peers' adapters registered.

`nox -s bench` runs this, in a virtualenv where procrastinate, pgqueuer and
chancy are installed. The adapters stay here, so the wheel never carries them.
"""

import sys

from pgjobs.bench import _bench
from pgjobs.cli import main
from tests.bench import peers

_bench.SYSTEMS.update(peers.SYSTEMS)
sys.exit(main(sys.argv[1:]))
