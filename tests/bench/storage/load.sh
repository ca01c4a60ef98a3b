#!/bin/sh
# Load 1M finished + 10k queued into the given scratch databases (cur a b).
set -e
for d in ${*:-cur a b}; do
  case $d in cur) h=pgjobs.jobs; l=pgjobs.jobs;; a) h=pgjobs.jobs; l=pgjobs.jobs_live;; b) h=pgjobs.job_history; l=pgjobs.jobs_live;; esac
  /usr/bin/time -f "$d load %e s" psql -q -h 127.0.0.1 -U postgres -d storage_$d -v hist=$h -v live=$l -f /tmp/storage/load.sql
done
