#!/bin/sh
# Fresh databases, then 3 rounds of the drain loop (40 s each, order rotated),
# with bench.py's stand-in for autovacuum (poll every 5 s, 0001's threshold).
cd /tmp/storage
./build.sh cur a b >/dev/null 2>&1 && ./load.sh cur a b >/dev/null 2>&1
for order in "cur a b" "a b cur" "b cur a"; do
  uptime
  PYTHONPATH=/work/main /work/main/.venv/bin/python bench.py drainvac 40 5 $order
done
uptime
