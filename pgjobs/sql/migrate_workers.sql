-- The workers that `migrate` must not break: those with a heartbeat within
-- :stale_after seconds, with the code revision and package version each
-- recorded at registration (columns from revision 0015 on). to_jsonb(w)
-- reads them whether or not the columns exist, so this also runs on a
-- database before 0015, where they are NULL: workers of older code.
SELECT w.id, w.host, w.pid,
       to_jsonb(w) ->> 'code_revision' AS code_revision,
       to_jsonb(w) ->> 'version' AS version
FROM pgjobs.workers AS w
WHERE w.last_seen_at > now() - make_interval(secs => CAST(:stale_after AS double precision))
ORDER BY w.id
