--
-- PostgreSQL database dump
--

\restrict oedtjIFcD1xAEyn5A6sI9tweuAmU42iovjmd1pAeF3XADhlFrvqBDsdwQZqZsWr

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: pgjobs; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA pgjobs;


ALTER SCHEMA pgjobs OWNER TO postgres;

--
-- Name: attempt_count; Type: DOMAIN; Schema: pgjobs; Owner: postgres
--

CREATE DOMAIN pgjobs.attempt_count AS integer
	CONSTRAINT attempt_count_valid CHECK ((VALUE >= 0));


ALTER DOMAIN pgjobs.attempt_count OWNER TO postgres;

--
-- Name: attempt_limit; Type: DOMAIN; Schema: pgjobs; Owner: postgres
--

CREATE DOMAIN pgjobs.attempt_limit AS integer
	CONSTRAINT attempt_limit_valid CHECK ((VALUE >= 1));


ALTER DOMAIN pgjobs.attempt_limit OWNER TO postgres;

--
-- Name: job_args; Type: DOMAIN; Schema: pgjobs; Owner: postgres
--

CREATE DOMAIN pgjobs.job_args AS jsonb
	CONSTRAINT job_args_valid CHECK ((jsonb_typeof(VALUE) = 'object'::text));


ALTER DOMAIN pgjobs.job_args OWNER TO postgres;

--
-- Name: job_priority; Type: DOMAIN; Schema: pgjobs; Owner: postgres
--

CREATE DOMAIN pgjobs.job_priority AS smallint
	CONSTRAINT job_priority_valid CHECK (((VALUE >= 0) AND (VALUE <= 4)));


ALTER DOMAIN pgjobs.job_priority OWNER TO postgres;

--
-- Name: job_status; Type: TYPE; Schema: pgjobs; Owner: postgres
--

CREATE TYPE pgjobs.job_status AS ENUM (
    'queued',
    'running',
    'succeeded',
    'failed',
    'cancelled'
);


ALTER TYPE pgjobs.job_status OWNER TO postgres;

--
-- Name: queue_name; Type: DOMAIN; Schema: pgjobs; Owner: postgres
--

CREATE DOMAIN pgjobs.queue_name AS text
	CONSTRAINT queue_name_valid CHECK (((VALUE <> ''::text) AND (length(VALUE) <= 128)));


ALTER DOMAIN pgjobs.queue_name OWNER TO postgres;

--
-- Name: task_name; Type: DOMAIN; Schema: pgjobs; Owner: postgres
--

CREATE DOMAIN pgjobs.task_name AS text
	CONSTRAINT task_name_valid CHECK (((VALUE <> ''::text) AND (length(VALUE) <= 255)));


ALTER DOMAIN pgjobs.task_name OWNER TO postgres;

--
-- Name: cancel(bigint); Type: FUNCTION; Schema: pgjobs; Owner: postgres
--

CREATE FUNCTION pgjobs.cancel(job_id bigint) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    current pgjobs.job_status;
BEGIN
    SELECT status INTO current FROM pgjobs.jobs WHERE id = job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgjobs: no job with id %', job_id
            USING ERRCODE = 'no_data_found', HINT = 'List jobs with: SELECT id, status FROM pgjobs.jobs';
    END IF;
    IF current <> 'queued' THEN
        RAISE EXCEPTION 'pgjobs: job % is %, only queued jobs can be cancelled', job_id, current
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE pgjobs.jobs SET status = 'cancelled', finished_at = now() WHERE id = job_id;
END
$$;


ALTER FUNCTION pgjobs.cancel(job_id bigint) OWNER TO postgres;

--
-- Name: enqueue(text, jsonb, text, integer, timestamp with time zone, text, integer, jsonb); Type: FUNCTION; Schema: pgjobs; Owner: postgres
--

CREATE FUNCTION pgjobs.enqueue(task text, args jsonb DEFAULT '{}'::jsonb, queue text DEFAULT 'default'::text, priority integer DEFAULT 2, run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, fingerprint text DEFAULT NULL::text, max_attempts integer DEFAULT 3, meta jsonb DEFAULT '{}'::jsonb) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
#variable_conflict use_column
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO pgjobs.jobs (task, args, queue, priority, run_at, fingerprint, max_attempts, meta)
    VALUES (
        enqueue.task,
        coalesce(enqueue.args, '{}'::jsonb),
        coalesce(enqueue.queue, 'default'),
        coalesce(enqueue.priority, 2),
        coalesce(enqueue.run_at, now()),
        enqueue.fingerprint,
        coalesce(enqueue.max_attempts, 3),
        coalesce(enqueue.meta, '{}'::jsonb)
    )
    ON CONFLICT (fingerprint) WHERE status IN ('queued', 'running') AND fingerprint IS NOT NULL DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NOT NULL AND (enqueue.run_at IS NULL OR enqueue.run_at <= now()) THEN
        PERFORM pgjobs.wake(coalesce(enqueue.queue, 'default'));
    END IF;
    RETURN new_id;
END
$$;


ALTER FUNCTION pgjobs.enqueue(task text, args jsonb, queue text, priority integer, run_at timestamp with time zone, fingerprint text, max_attempts integer, meta jsonb) OWNER TO postgres;

--
-- Name: enqueue_many(text[], jsonb[], text[], integer[], timestamp with time zone[], text[], integer[], jsonb[]); Type: FUNCTION; Schema: pgjobs; Owner: postgres
--

CREATE FUNCTION pgjobs.enqueue_many(tasks text[], args jsonb[], queues text[], priorities integer[], run_ats timestamp with time zone[], fingerprints text[], max_attempts integer[], metas jsonb[]) RETURNS SETOF bigint
    LANGUAGE plpgsql
    AS $$
#variable_conflict use_column
DECLARE
    due_queue text;
BEGIN
    RETURN QUERY
    INSERT INTO pgjobs.jobs (task, args, queue, priority, run_at, fingerprint, max_attempts, meta)
    SELECT t, a, q, p, coalesce(r, now()), f, m, coalesce(x, '{}'::jsonb)
    FROM unnest(tasks, args, queues, priorities, run_ats, fingerprints, max_attempts, metas)
        AS u(t, a, q, p, r, f, m, x)
    ON CONFLICT (fingerprint) WHERE status IN ('queued', 'running') AND fingerprint IS NOT NULL DO NOTHING
    RETURNING id;
    FOR due_queue IN
        SELECT DISTINCT q FROM unnest(queues, run_ats) AS u(q, r) WHERE r IS NULL OR r <= now()
    LOOP
        PERFORM pgjobs.wake(due_queue);
    END LOOP;
END
$$;


ALTER FUNCTION pgjobs.enqueue_many(tasks text[], args jsonb[], queues text[], priorities integer[], run_ats timestamp with time zone[], fingerprints text[], max_attempts integer[], metas jsonb[]) OWNER TO postgres;

--
-- Name: retry(bigint); Type: FUNCTION; Schema: pgjobs; Owner: postgres
--

CREATE FUNCTION pgjobs.retry(job_id bigint) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    current pgjobs.job_status;
    job_queue text;
    job_fingerprint text;
    holder bigint;
BEGIN
    SELECT status, queue, fingerprint INTO current, job_queue, job_fingerprint
    FROM pgjobs.jobs WHERE id = job_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pgjobs: no job with id %', job_id
            USING ERRCODE = 'no_data_found', HINT = 'List jobs with: SELECT id, status FROM pgjobs.jobs';
    END IF;
    IF current NOT IN ('failed', 'cancelled', 'queued') THEN
        RAISE EXCEPTION 'pgjobs: job % is %, only failed, cancelled or queued jobs can be retried', job_id, current
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF current <> 'queued' AND job_fingerprint IS NOT NULL THEN
        SELECT id INTO holder FROM pgjobs.jobs
        WHERE fingerprint = job_fingerprint AND status IN ('queued', 'running') AND id <> job_id;
        IF FOUND THEN
            RAISE EXCEPTION 'pgjobs: job % cannot be retried: active job % holds its fingerprint %',
                job_id, holder, job_fingerprint
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END IF;
    UPDATE pgjobs.jobs
       SET status = 'queued', run_at = now(), attempts = 0, finished_at = NULL, worker_id = NULL
     WHERE id = job_id;
    PERFORM pgjobs.wake(job_queue);
END
$$;


ALTER FUNCTION pgjobs.retry(job_id bigint) OWNER TO postgres;

--
-- Name: wake(text); Type: FUNCTION; Schema: pgjobs; Owner: postgres
--

CREATE FUNCTION pgjobs.wake(queue text) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pgjobs.workers AS w WHERE w.awaiting_work AND wake.queue = ANY (w.queues)
    ) THEN
        PERFORM pg_notify('pgjobs', wake.queue);
    END IF;
END
$$;


ALTER FUNCTION pgjobs.wake(queue text) OWNER TO postgres;

--
-- Name: FUNCTION wake(queue text); Type: COMMENT; Schema: pgjobs; Owner: postgres
--

COMMENT ON FUNCTION pgjobs.wake(queue text) IS 'Notify channel pgjobs with the queue name, only if a worker of that queue awaits work.';


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: alembic_version; Type: TABLE; Schema: pgjobs; Owner: postgres
--

CREATE TABLE pgjobs.alembic_version (
    version_num character varying(32) NOT NULL
);


ALTER TABLE pgjobs.alembic_version OWNER TO postgres;

--
-- Name: jobs; Type: TABLE; Schema: pgjobs; Owner: postgres
--

CREATE TABLE pgjobs.jobs (
    id bigint NOT NULL,
    queue pgjobs.queue_name DEFAULT 'default'::text NOT NULL,
    task pgjobs.task_name NOT NULL,
    args pgjobs.job_args DEFAULT '{}'::jsonb NOT NULL,
    priority pgjobs.job_priority DEFAULT 2 NOT NULL,
    status pgjobs.job_status DEFAULT 'queued'::pgjobs.job_status NOT NULL,
    run_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts pgjobs.attempt_count DEFAULT 0 NOT NULL,
    max_attempts pgjobs.attempt_limit DEFAULT 3 NOT NULL,
    fingerprint text,
    worker_id bigint,
    started_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    errors jsonb DEFAULT '[]'::jsonb NOT NULL,
    result jsonb,
    meta jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT jobs_running_owned CHECK (((status <> 'running'::pgjobs.job_status) OR (worker_id IS NOT NULL)))
)
WITH (autovacuum_vacuum_scale_factor='0.01', autovacuum_analyze_scale_factor='0.02', autovacuum_vacuum_cost_delay='0');


ALTER TABLE pgjobs.jobs OWNER TO postgres;

--
-- Name: failed_jobs; Type: VIEW; Schema: pgjobs; Owner: postgres
--

CREATE VIEW pgjobs.failed_jobs AS
 SELECT jobs.id,
    jobs.queue,
    jobs.task,
    jobs.args,
    jobs.attempts,
    jobs.finished_at,
    ((jobs.errors -> '-1'::integer) ->> 'type'::text) AS last_error_type,
    ((jobs.errors -> '-1'::integer) ->> 'message'::text) AS last_error_message,
    jobs.errors
   FROM pgjobs.jobs
  WHERE (jobs.status = 'failed'::pgjobs.job_status);


ALTER TABLE pgjobs.failed_jobs OWNER TO postgres;

--
-- Name: job_states; Type: VIEW; Schema: pgjobs; Owner: postgres
--

CREATE VIEW pgjobs.job_states AS
 SELECT j.id,
    j.queue,
    j.task,
    j.args,
    j.priority,
    j.status,
    j.run_at,
    j.attempts,
    j.max_attempts,
    j.fingerprint,
    j.worker_id,
    j.started_at,
    j.created_at,
    j.finished_at,
    j.errors,
    j.result,
    j.meta,
        CASE
            WHEN ((j.status = 'queued'::pgjobs.job_status) AND ((j.attempts)::integer > 0)) THEN 'retrying'::text
            WHEN ((j.status = 'queued'::pgjobs.job_status) AND (j.run_at > now())) THEN 'scheduled'::text
            ELSE (j.status)::text
        END AS state
   FROM pgjobs.jobs j;


ALTER TABLE pgjobs.job_states OWNER TO postgres;

--
-- Name: jobs_id_seq; Type: SEQUENCE; Schema: pgjobs; Owner: postgres
--

ALTER TABLE pgjobs.jobs ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME pgjobs.jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: queue_stats; Type: VIEW; Schema: pgjobs; Owner: postgres
--

CREATE VIEW pgjobs.queue_stats AS
 SELECT jobs.queue,
    count(*) FILTER (WHERE ((jobs.status = 'queued'::pgjobs.job_status) AND (jobs.run_at <= now()))) AS available,
    count(*) FILTER (WHERE ((jobs.status = 'queued'::pgjobs.job_status) AND (jobs.run_at > now()))) AS scheduled,
    count(*) FILTER (WHERE (jobs.status = 'running'::pgjobs.job_status)) AS running,
    count(*) FILTER (WHERE (jobs.status = 'succeeded'::pgjobs.job_status)) AS succeeded,
    count(*) FILTER (WHERE (jobs.status = 'failed'::pgjobs.job_status)) AS failed,
    count(*) FILTER (WHERE (jobs.status = 'cancelled'::pgjobs.job_status)) AS cancelled,
    (now() - min(jobs.run_at) FILTER (WHERE ((jobs.status = 'queued'::pgjobs.job_status) AND (jobs.run_at <= now())))) AS oldest_available_age
   FROM pgjobs.jobs
  GROUP BY jobs.queue;


ALTER TABLE pgjobs.queue_stats OWNER TO postgres;

--
-- Name: queues; Type: TABLE; Schema: pgjobs; Owner: postgres
--

CREATE TABLE pgjobs.queues (
    name text NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);


ALTER TABLE pgjobs.queues OWNER TO postgres;

--
-- Name: schedules; Type: TABLE; Schema: pgjobs; Owner: postgres
--

CREATE TABLE pgjobs.schedules (
    name text NOT NULL,
    expression text NOT NULL,
    timezone text DEFAULT 'UTC'::text NOT NULL,
    task text NOT NULL,
    args jsonb DEFAULT '{}'::jsonb NOT NULL,
    queue text DEFAULT 'default'::text NOT NULL,
    priority smallint DEFAULT 2 NOT NULL,
    max_attempts integer DEFAULT 3 NOT NULL,
    backfill interval DEFAULT '00:00:00'::interval NOT NULL,
    skip_if_running boolean DEFAULT false NOT NULL,
    last_fired_at timestamp with time zone,
    next_fire_at timestamp with time zone,
    active boolean DEFAULT true NOT NULL,
    active_since timestamp with time zone DEFAULT now() NOT NULL,
    removed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT schedules_args_object CHECK ((jsonb_typeof(args) = 'object'::text)),
    CONSTRAINT schedules_backfill_valid CHECK ((backfill >= '00:00:00'::interval)),
    CONSTRAINT schedules_name_valid CHECK (((name <> ''::text) AND (length(name) <= 200))),
    CONSTRAINT schedules_priority_valid CHECK (((priority >= 0) AND (priority <= 4))),
    CONSTRAINT schedules_queue_valid CHECK (((queue <> ''::text) AND (length(queue) <= 128))),
    CONSTRAINT schedules_removed_valid CHECK ((active = (removed_at IS NULL))),
    CONSTRAINT schedules_task_valid CHECK (((task <> ''::text) AND (length(task) <= 255)))
);


ALTER TABLE pgjobs.schedules OWNER TO postgres;

--
-- Name: workers; Type: TABLE; Schema: pgjobs; Owner: postgres
--

CREATE TABLE pgjobs.workers (
    id bigint NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    queues text[] NOT NULL,
    concurrency integer NOT NULL,
    awaiting_work boolean DEFAULT false NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    meta jsonb DEFAULT '{}'::jsonb NOT NULL
);


ALTER TABLE pgjobs.workers OWNER TO postgres;

--
-- Name: workers_id_seq; Type: SEQUENCE; Schema: pgjobs; Owner: postgres
--

ALTER TABLE pgjobs.workers ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME pgjobs.workers_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: pgjobs; Owner: postgres
--

ALTER TABLE ONLY pgjobs.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: pgjobs; Owner: postgres
--

ALTER TABLE ONLY pgjobs.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);


--
-- Name: queues queues_pkey; Type: CONSTRAINT; Schema: pgjobs; Owner: postgres
--

ALTER TABLE ONLY pgjobs.queues
    ADD CONSTRAINT queues_pkey PRIMARY KEY (name);


--
-- Name: schedules schedules_pkey; Type: CONSTRAINT; Schema: pgjobs; Owner: postgres
--

ALTER TABLE ONLY pgjobs.schedules
    ADD CONSTRAINT schedules_pkey PRIMARY KEY (name);


--
-- Name: workers workers_pkey; Type: CONSTRAINT; Schema: pgjobs; Owner: postgres
--

ALTER TABLE ONLY pgjobs.workers
    ADD CONSTRAINT workers_pkey PRIMARY KEY (id);


--
-- Name: jobs_fetch_idx; Type: INDEX; Schema: pgjobs; Owner: postgres
--

CREATE INDEX jobs_fetch_idx ON pgjobs.jobs USING btree (hashtext((queue)::text), priority, run_at, id) INCLUDE (queue) WHERE (status = 'queued'::pgjobs.job_status);


--
-- Name: jobs_fingerprint_active_idx; Type: INDEX; Schema: pgjobs; Owner: postgres
--

CREATE UNIQUE INDEX jobs_fingerprint_active_idx ON pgjobs.jobs USING btree (fingerprint) WHERE ((status = ANY (ARRAY['queued'::pgjobs.job_status, 'running'::pgjobs.job_status])) AND (fingerprint IS NOT NULL));


--
-- Name: jobs_fingerprint_idx; Type: INDEX; Schema: pgjobs; Owner: postgres
--

CREATE INDEX jobs_fingerprint_idx ON pgjobs.jobs USING btree (fingerprint) WHERE (fingerprint IS NOT NULL);


--
-- Name: jobs_finished_idx; Type: INDEX; Schema: pgjobs; Owner: postgres
--

CREATE INDEX jobs_finished_idx ON pgjobs.jobs USING btree (finished_at) WHERE (status = ANY (ARRAY['succeeded'::pgjobs.job_status, 'failed'::pgjobs.job_status, 'cancelled'::pgjobs.job_status]));


--
-- Name: jobs_running_worker_idx; Type: INDEX; Schema: pgjobs; Owner: postgres
--

CREATE INDEX jobs_running_worker_idx ON pgjobs.jobs USING btree (worker_id) WHERE (status = 'running'::pgjobs.job_status);


--
-- Name: jobs_queue_status; Type: STATISTICS; Schema: pgjobs; Owner: postgres
--

CREATE STATISTICS pgjobs.jobs_queue_status (mcv) ON queue, status FROM pgjobs.jobs;


ALTER STATISTICS pgjobs.jobs_queue_status OWNER TO postgres;

--
-- PostgreSQL database dump complete
--

\unrestrict oedtjIFcD1xAEyn5A6sI9tweuAmU42iovjmd1pAeF3XADhlFrvqBDsdwQZqZsWr

