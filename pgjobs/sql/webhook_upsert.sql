-- Write the webhooks declared in an App's code (origin 'code'): parallel
-- arrays, one element per webhook. events, tasks and queues come as JSON
-- arrays (a text[][] needs rows of one length) and are stored as text[].
-- Rows whose definition did not change are left alone, so updated_at says
-- when a definition last changed. A webhook added by SQL under the same name
-- becomes the code's: the code is the source of truth for its names.
INSERT INTO pgjobs.webhooks AS w (
    name, url, secret, events, tasks, queues, queue, timeout, max_attempts, origin
)
SELECT u.name, u.url, u.secret,
       ARRAY(SELECT jsonb_array_elements_text(u.events)),
       CASE WHEN u.tasks IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(u.tasks)) END,
       CASE WHEN u.queues IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(u.queues)) END,
       u.queue, u.timeout, u.max_attempts, 'code'
FROM unnest(
    CAST(:names AS text[]),
    CAST(:urls AS text[]),
    CAST(:secrets AS text[]),
    CAST(:events AS jsonb[]),
    CAST(:tasks AS jsonb[]),
    CAST(:queues AS jsonb[]),
    CAST(:queue AS text[]),
    CAST(:timeouts AS double precision[]),
    CAST(:max_attempts AS integer[])
) AS u(name, url, secret, events, tasks, queues, queue, timeout, max_attempts)
ON CONFLICT (name) DO UPDATE SET
    url = excluded.url,
    secret = excluded.secret,
    events = excluded.events,
    tasks = excluded.tasks,
    queues = excluded.queues,
    queue = excluded.queue,
    timeout = excluded.timeout,
    max_attempts = excluded.max_attempts,
    origin = 'code',
    active = true,
    updated_at = now()
WHERE NOT w.active
   OR w.origin <> 'code'
   OR (w.url, w.secret, w.events, w.tasks, w.queues, w.queue, w.timeout, w.max_attempts)
      IS DISTINCT FROM
      (excluded.url, excluded.secret, excluded.events, excluded.tasks, excluded.queues,
       excluded.queue, excluded.timeout, excluded.max_attempts)
RETURNING name
