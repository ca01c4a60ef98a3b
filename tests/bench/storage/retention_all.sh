#!/bin/sh
# Fresh 1M+10k databases for each run; plain_sql.sql on the fresh ones, then
# each retention variant with the drain loop running; today's pruner alone.
cd /tmp/storage
export PYTHONPATH=/work/main:/tmp/storage
PY=/work/main/.venv/bin/python
uptime
./build.sh cur >/dev/null 2>&1; ./load.sh cur >/dev/null 2>&1
psql -h 127.0.0.1 -U postgres -d storage_cur -v hist=pgjobs.jobs -f plain_sql.sql > results_plain_sql_cur.txt 2>&1
$PY retention.py prune cur 100
for mode in detach drop detach-reader drop-reader; do
  for d in a b; do
    ./build.sh $d >/dev/null 2>&1; ./load.sh $d >/dev/null 2>&1
    if [ $mode = detach ]; then
      h=pgjobs.jobs; [ $d = b ] && h=pgjobs.job_history
      psql -h 127.0.0.1 -U postgres -d storage_$d -v hist=$h -f plain_sql.sql > results_plain_sql_$d.txt 2>&1
    fi
    $PY retention.py $mode $d
  done
done
uptime
