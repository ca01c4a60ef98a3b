#!/bin/sh
# Build the three scratch databases: storage_cur (0008 as is), storage_a, storage_b.
# Usage: /tmp/storage/build.sh [cur|a|b]...   (drops and recreates each)
set -e
for d in "${@:-cur a b}"; do :; done
for d in ${*:-cur a b}; do
  db=storage_$d
  dropdb -h 127.0.0.1 -U postgres --if-exists $db
  createdb -h 127.0.0.1 -U postgres $db
  (cd /work/main && .venv/bin/python -m pgjobs migrate --dsn postgresql://postgres@127.0.0.1:5432/$db >/dev/null)
  if [ $d != cur ]; then psql -q -h 127.0.0.1 -U postgres -d $db -v ON_ERROR_STOP=1 -f /tmp/storage/schema_$d.sql >/dev/null; fi
  echo built $db
done
