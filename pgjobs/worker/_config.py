"""Worker settings, checked up front (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pgjobs._options import check_queue
from pgjobs.errors import ConfigurationError

#: The shortest retention: a minute (a history partition is at least 15).
MIN_RETENTION = 60.0
#: `queues=(EVERY_QUEUE,)` (`--queues '*'`): serve every queue, including
#: queues that first appear while the worker runs (pgjobs/worker/_queues.py).
EVERY_QUEUE = "*"


def check_partition_interval(seconds: float) -> None:
    """Refuse a history partition interval that does not divide a day.

    The rule is pgjobs.history_step_valid's (migration 0009): whole minutes,
    from 15 minutes to a day, dividing a day evenly, so that partitions line
    up on midnight UTC whatever interval made them.

    Raises:
        ConfigurationError: naming the accepted range.
    """
    if not (900 <= seconds <= 86_400 and seconds % 60 == 0 and 86_400 % seconds == 0):
        raise ConfigurationError(
            "a history partition interval must divide a day evenly, from 15 minutes to "
            f"1 day (15m, 20m, 30m, 1h, 2h, 3h, 4h, 6h, 8h, 12h or 1d); got {seconds:g} seconds"
        )


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How a worker runs. Durations are in seconds.

    Attributes:
        queues: the queues to claim from; ("*",) claims from every queue
            that has queued jobs, found as they appear.
        queues_note: why these queues, when the user did not name them:
            logged with them at start (`worker.queues`), with how to serve
            others. The CLI sets it when no --queues is given.
        concurrency: jobs run at once (async tasks plus threads).
        listen: wake on LISTEN/NOTIFY; False is poll-only mode, for a
            transaction-pooling PgBouncer.
        poll_interval: the fallback poll when no notification arrives.
        heartbeat_interval: how often the worker proves it is alive.
        stale_after: a worker silent this long is dead; its jobs are rescued.
            (A worker that LISTENs is found dead much sooner, by its
            liveness lock: see `liveness_grace`.)
        rescue_interval: how often the rescuer runs (with ±20% jitter). A
            pass is one statement of about a millisecond
            (pgjobs/sql/rescue.sql).
        liveness_grace: how long a worker's liveness lock must be missing
            before the rescuer takes the worker for dead. Its listener takes
            the lock again within a fraction of a second of reconnecting;
            the grace must outlast that, and with rescue_interval it sets
            how soon a SIGKILLed worker's jobs are back (0.8 and 0.5: in
            0.8 to 1.9 s).
        grace_period: how long a graceful stop waits for running jobs.
        complete_batch: outcomes written per statement at most.
        complete_interval: the longest an outcome waits to be written.
        leader_interval: how often a worker that is not the leader tries to
            become it; a dead leader is replaced within about this long,
            and its own jobs are rescued about a second later. A try is
            one statement through the worker's pool, which asks whether the
            lock is free; only then does it connect and take the lock.
        leader_dsn: the connection for the leader's session advisory lock,
            when `dsn` goes through a transaction-pooling PgBouncer: a direct
            or session-pooled address. Poll-only workers (listen=False)
            without it elect no leader: each runs the leader's duties itself,
            which stays safe (see pgjobs/worker/_leader.py).
        cron_grace: how late a tick may fire and still count as on time.
            Older missed ticks fire only within their schedule's backfill.
        prune_interval: how often the pruner runs (with ±20% jitter).
        prune_batch: finished jobs moved from the live table to the history
            per statement at most (rows an upgrade or an operator left there).
        retention_succeeded: seconds a succeeded job is kept at least (whole
            history partitions are dropped, so at most one
            `partition_interval` more); None keeps it. At least 60.
        retention_cancelled: the same for cancelled jobs.
        retention_failed: the same for failed (dead-lettered) jobs.
        partition_interval: seconds of finished_at per history partition,
            dividing a day evenly: 900 (15 minutes) to 86400 (a day).
        partition_ahead: seconds of history partitions made ahead of now.
        vacuum_interval: how often the leader checks the live table's dead
            rows and vacuums it past `vacuum_dead_rows`; None leaves it to
            autovacuum alone.
        vacuum_dead_rows: the dead rows of pgjobs.jobs_live that start a VACUUM.
        unserved_interval: how often the leader logs the queues that have
            due jobs and no live worker (`leader.unserved_queue`).
        health_port: the TCP port of the worker's /livez and /readyz
            (pgjobs/worker/_health.py); None serves none; 0 picks a free
            one (logged as `worker.health_serving`).
        health_host: the address the health probes are served on: every
            interface by default, since an orchestrator probes a container
            from outside it (Kubernetes, through the pod's IP).
        metrics_port: serve Prometheus metrics at `/metrics` on this TCP
            port (0: any free one); None (the default) records none. Needs
            the `metrics` extra (prometheus-client).
        metrics_address: the address the metrics server binds; the default
            answers on every IPv4 address, for a Prometheus elsewhere.
        webhooks: write the App's webhooks to pgjobs.webhooks when starting
            (pgjobs/worker/_webhooks.py). `pgjobs.testing.drain` turns it
            off: a test run must not start notifying the endpoints the code
            declares. Deliveries already queued run either way.
    """

    queues: tuple[str, ...] = ("default",)
    queues_note: str | None = None
    concurrency: int = 10
    listen: bool = True
    poll_interval: float = 1.0
    heartbeat_interval: float = 5.0
    stale_after: float = 30.0
    rescue_interval: float = 0.5
    liveness_grace: float = 0.8
    grace_period: float = 30.0
    complete_batch: int = 200
    complete_interval: float = 0.005
    # -- leader, cron and maintenance (pgjobs/worker/_leader.py) --
    leader_interval: float = 1.0
    leader_dsn: str | None = None
    cron_grace: float = 10.0
    prune_interval: float = 60.0
    prune_batch: int = 5000
    retention_succeeded: float | None = 86_400.0
    retention_cancelled: float | None = 86_400.0
    retention_failed: float | None = 7 * 86_400.0
    partition_interval: float = 86_400.0
    partition_ahead: float = 2 * 86_400.0
    vacuum_interval: float | None = 5.0
    vacuum_dead_rows: int = 10_000
    unserved_interval: float = 60.0
    # -- health probes (pgjobs/worker/_health.py) --
    health_port: int | None = None
    health_host: str = "0.0.0.0"  # noqa: S104 (probed from outside the container)
    host_tags: dict[str, str] = field(default_factory=dict)
    # -- metrics (pgjobs/worker/_metrics.py) --
    metrics_port: int | None = None
    metrics_address: str = "0.0.0.0"  # noqa: S104  (Prometheus scrapes from another host)
    # -- webhooks (pgjobs/worker/_webhooks.py) --
    webhooks: bool = True

    @property
    def every_queue(self) -> bool:
        """Whether this worker serves every queue (`queues=("*",)`)."""
        return self.queues == (EVERY_QUEUE,)

    def __post_init__(self) -> None:
        if not self.queues:
            raise ConfigurationError("a worker needs at least one queue")
        if EVERY_QUEUE in self.queues and len(self.queues) > 1:
            raise ConfigurationError(
                f"{EVERY_QUEUE!r} serves every queue and stands alone: give --queues "
                f"{EVERY_QUEUE!r}, or list the queues; got {','.join(self.queues)!r}"
            )
        for queue in self.queues:
            check_queue(queue)
        if not 1 <= self.concurrency <= 10_000:
            raise ConfigurationError(f"concurrency must be 1 to 10000, got {self.concurrency}")
        for name in (
            "poll_interval",
            "heartbeat_interval",
            "stale_after",
            "rescue_interval",
            "liveness_grace",
            "complete_interval",
        ):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigurationError(f"{name} must be > 0 seconds, got {value}")
        if self.grace_period < 0:
            raise ConfigurationError(f"grace_period must be >= 0, got {self.grace_period}")
        if self.stale_after <= self.heartbeat_interval:
            raise ConfigurationError(
                f"stale_after ({self.stale_after}s) must exceed heartbeat_interval "
                f"({self.heartbeat_interval}s), or live workers would be declared dead"
            )
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65_535:
            raise ConfigurationError(
                f"metrics_port must be 0 to 65535 (0: any free port), got {self.metrics_port}"
            )
        # -- leader, cron and maintenance --
        for name in ("leader_interval", "cron_grace", "prune_interval", "unserved_interval"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigurationError(f"{name} must be > 0 seconds, got {value}")
        if self.vacuum_interval is not None and not self.vacuum_interval > 0:
            raise ConfigurationError(
                f"vacuum_interval must be > 0 seconds, or None; got {self.vacuum_interval}"
            )
        if not self.vacuum_dead_rows >= 1:
            raise ConfigurationError(f"vacuum_dead_rows must be >= 1, got {self.vacuum_dead_rows}")
        if not 1 <= self.prune_batch <= 100_000:
            raise ConfigurationError(f"prune_batch must be 1 to 100000, got {self.prune_batch}")
        if self.health_port is not None and not 0 <= self.health_port <= 65_535:
            raise ConfigurationError(f"health_port must be 0 to 65535, got {self.health_port}")
        for name in ("retention_succeeded", "retention_cancelled", "retention_failed"):
            value = getattr(self, name)
            if value is not None and not value >= MIN_RETENTION:
                raise ConfigurationError(
                    f"{name} must be at least {MIN_RETENTION:g} seconds (a minute), "
                    f"or None to keep those jobs; got {value}"
                )
        check_partition_interval(self.partition_interval)
        if not self.partition_ahead >= self.partition_interval:
            raise ConfigurationError(
                f"partition_ahead ({self.partition_ahead:g}s) must be at least one "
                f"partition_interval ({self.partition_interval:g}s)"
            )
