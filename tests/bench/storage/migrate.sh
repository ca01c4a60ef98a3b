#!/bin/sh
# Online migration on scratch copies: storage_ma / storage_mb = current schema
# with 1M finished + 10k queued, then each design's steps, timed.
set -e
P="psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1"
for d in ${*:-a b}; do
  db=storage_m$d
  dropdb -h 127.0.0.1 -U postgres --if-exists $db; createdb -h 127.0.0.1 -U postgres $db
  (cd /work/main && .venv/bin/python -m pgjobs migrate --dsn postgresql://postgres@127.0.0.1:5432/$db >/dev/null)
  $P -q -d $db -v hist=pgjobs.jobs -v live=pgjobs.jobs -f /tmp/storage/load.sql >/dev/null
  echo "== design $d on $db"
  if [ $d = b ]; then
    $P -q -d $db -f /tmp/storage/migrate_b_prepare.sql >/dev/null
    $P -d $db -f /tmp/storage/migrate_b_cutover.sql | grep -E "Time|ERROR" | awk '{s+=$2} END {print "cutover statements total ms:", s}'
    t0=$(date +%s.%N); n=1; while [ "$n" != 0 ]; do n=$($P -Atq -d $db -f /tmp/storage/migrate_b_move.sql); done
    echo "step 2 (move 1M finished rows, online): $(echo "$(date +%s.%N) - $t0" | bc) s"
    $P -d $db -f /tmp/storage/migrate_b_finish.sql 2>&1 | grep -E "Time|after|MB|kB"
  else
    $P -q -d $db -f /tmp/storage/migrate_a_prepare.sql >/dev/null
    t0=$(date +%s.%N); n=1; while [ "$n" != 0 ]; do n=$($P -Atq -d $db -f /tmp/storage/migrate_a_move.sql); done
    echo "step 2 (move 1M finished rows, online): $(echo "$(date +%s.%N) - $t0" | bc) s"
    $P -d $db -c "VACUUM pgjobs.jobs" >/dev/null
    $P -d $db -f /tmp/storage/migrate_a_cutover.sql | grep -E "Time|ERROR" | awk '{s+=$2; print} END {print "cutover statements total ms:", s}'
  fi
  $P -Atd $db -c "SELECT status, count(*) FROM pgjobs.jobs GROUP BY 1 ORDER BY 1"
done
