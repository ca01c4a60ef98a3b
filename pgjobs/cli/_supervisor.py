"""`python -m pgjobs worker --processes N`: start N workers, restart the ones that crash.

Each child is an ordinary `python -m pgjobs worker` process (the same command
line with `--processes 1`); one of them becomes the leader by the usual
election. The supervisor connects to nothing: it starts, watches, restarts
and signals its children.

The decisions (which exits to restart, after how long, when to give up) are
plain functions and a small record of recent crashes, tested without
processes; `Supervisor` is the loop that acts on them.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import dataclasses
import enum
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from pgjobs._log import get_logger

#: Every child stopped and exited 0 after a stop signal.
EXIT_OK = 0
#: Stopped by a signal, but some child did not exit 0 (forced, or it failed while stopping).
EXIT_CHILD_FAILED = 1
#: A child exited with a configuration error (an unknown App, a bad DSN, an
#: unmigrated schema, an unreachable database at start): another start would
#: fail the same way.
EXIT_CONFIGURATION = 2
#: Children kept crashing soon after they started: the supervisor gave up.
EXIT_GAVE_UP = 3

#: The most `--processes` accepts: far beyond any sensible pool on one machine.
MAX_PROCESSES = 256


def parse_processes(text: str) -> int:
    """An argparse type: `auto` (the cores this process may use) or 1 to 256."""
    if text.strip().lower() == "auto":
        return available_cores()
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PROCESSES:
        raise argparse.ArgumentTypeError(
            f"expected auto or a whole number from 1 to {MAX_PROCESSES}, got {text!r}"
        )
    return value


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, min(len(os.sched_getaffinity(0)), MAX_PROCESSES))
    return max(1, min(os.cpu_count() or 1, MAX_PROCESSES))


def child_argv(argv: Sequence[str]) -> list[str]:
    """The arguments of one child: `argv` without `--processes`, then `--processes 1`.

    The trailing `--processes 1` also wins over an abbreviation of the
    option (`--proc 4`), which argparse accepts and this does not strip:
    for repeated options the last one counts.
    """
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--processes":
            skip = True
        elif not arg.startswith("--processes="):
            out.append(arg)
    return [*out, "--processes", "1"]


# -- the decisions ------------------------------------------------------------


class Exit(enum.Enum):
    """What a child's exit code says about restarting it."""

    #: 0: it stopped cleanly (someone signalled it directly): start a fresh one.
    CLEAN = "clean"
    #: 2: a configuration error, or a database unreachable at start. From a
    #: slot's first child it means the group cannot start; from a restarted
    #: one (the same configuration worked before) it is taken as a crash.
    CONFIGURATION = "configuration"
    #: Anything else: 1 (forced stop, an uncaught exception), 3 (one of the
    #: worker's loops failed), or killed by a signal (a negative code).
    CRASH = "crash"


def classify(code: int) -> Exit:
    """How the supervisor reads a child's exit code (negative: killed by that signal)."""
    if code == 0:
        return Exit.CLEAN
    if code == EXIT_CONFIGURATION:
        return Exit.CONFIGURATION
    return Exit.CRASH


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
    """When to restart a child and when to give up.

    Attributes:
        initial_delay: seconds before the first restart of a slot.
        max_delay: the delay doubles with each quick exit of the same slot, up to this.
        stable_after: a child that ran this long before exiting resets its
            slot's delay and forgets earlier crashes.
        max_crashes: more crashes than this within `window` seconds, none of
            them of a child that had run `stable_after`: give up.
        window: seconds over which crashes are counted.
    """

    initial_delay: float = 1.0
    max_delay: float = 30.0
    stable_after: float = 30.0
    max_crashes: int = 5
    window: float = 60.0

    def delay(self, quick_exits: int) -> float:
        """Seconds to wait before a restart, after `quick_exits` earlier quick exits in a row."""
        return float(min(self.max_delay, self.initial_delay * 2 ** min(quick_exits, 32)))


class Action(enum.Enum):
    """What to do after a child exited."""

    RESTART = "restart"
    STOP_CONFIGURATION = "stop_configuration"
    GIVE_UP = "give_up"


@dataclasses.dataclass(frozen=True)
class Decision:
    """The supervisor's answer to one child's exit."""

    action: Action
    #: Seconds to wait before the restart (RESTART only).
    delay: float = 0.0


class Restarts:
    """The record that decides on each exit: per-slot backoff, and crashes over the window.

    Pure: the caller passes the time, so tests need neither processes nor clocks.
    """

    def __init__(self, policy: RestartPolicy, slots: int) -> None:
        self.policy = policy
        #: Per slot: how many times in a row its child exited before `stable_after`.
        self.quick_exits = [0] * slots
        #: Per slot: whether a child of it has exited before (this one is a restart).
        self.restarted = [False] * slots
        self._crashes: collections.deque[float] = collections.deque()

    def exited(self, slot: int, code: int, uptime: float, now: float) -> Decision:
        """Record that the child of `slot` exited with `code` after `uptime` seconds."""
        kind = classify(code)
        first_child, self.restarted[slot] = not self.restarted[slot], True
        if kind is Exit.CONFIGURATION:
            if first_child:
                return Decision(Action.STOP_CONFIGURATION)
            # The configuration started this slot before: a database down
            # just as the child restarted, most likely. Retried, with the
            # backoff and the give-up limit of any crash.
            kind = Exit.CRASH
        policy = self.policy
        if uptime >= policy.stable_after:
            # It stayed up: whatever crashed before is history.
            self.quick_exits[slot] = 0
            self._crashes.clear()
        if kind is Exit.CRASH:
            self._crashes.append(now)
            while self._crashes and self._crashes[0] < now - policy.window:
                self._crashes.popleft()
            if len(self._crashes) > policy.max_crashes:
                return Decision(Action.GIVE_UP)
        delay = policy.delay(self.quick_exits[slot])
        if uptime < policy.stable_after:
            self.quick_exits[slot] += 1
        return Decision(Action.RESTART, delay)

    @property
    def recent_crashes(self) -> int:
        """Crashes counted in the current window."""
        return len(self._crashes)


def stop_code(codes: Sequence[int]) -> int:
    """The exit code after a stop by signal: 0 if every child exited 0, else 1."""
    return EXIT_OK if all(code == 0 for code in codes) else EXIT_CHILD_FAILED


# -- the loop ----------------------------------------------------------------


@dataclasses.dataclass
class _Child:
    slot: int
    proc: subprocess.Popen[bytes]
    started: float


class Supervisor:
    """Runs `processes` copies of `command`, restarts them by `policy`, passes signals on.

    Args:
        command: the child's full command line.
        processes: how many children to keep running.
        policy: when to restart and when to give up.
        poll_interval: seconds between looks at the children.
    """

    def __init__(
        self,
        command: Sequence[str],
        processes: int,
        policy: RestartPolicy | None = None,
        *,
        poll_interval: float = 0.1,
    ) -> None:
        self.command = list(command)
        self.processes = processes
        self.policy = policy or RestartPolicy()
        self.poll_interval = poll_interval
        self._restarts = Restarts(self.policy, processes)
        self._children: dict[int, _Child] = {}
        #: slot -> monotonic time of its pending restart.
        self._pending: dict[int, float] = {}
        self._signals: list[int] = []
        self._signals_handled = 0
        self._stopping = False
        #: Set when the stop was not asked for by a signal.
        self._code: int | None = None
        self._final_codes: list[int] = []
        self._log = get_logger()
        self._preexec = _stop_with_parent()

    def run(self) -> int:
        """Start the children and supervise them until they have all stopped; the exit code."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for slot in range(self.processes):
                self._start(slot)
            self._log.info(
                "supervisor.started",
                processes=self.processes,
                pids=[child.proc.pid for child in self._children.values()],
            )
            while True:
                self._handle_signals()
                self._reap()
                self._start_due()
                if self._stopping and not self._children:
                    break
                time.sleep(self.poll_interval)
        finally:
            # Only reached with children left if the loop itself failed:
            # they get the stop signal rather than being left behind.
            for child in self._children.values():
                _signal(child.proc, signal.SIGTERM)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        code = self._code if self._code is not None else stop_code(self._final_codes)
        self._log.info("supervisor.stopped", code=code)
        return code

    # -- signals ----------------------------------------------------------------

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only record it: the loop acts on it between two looks at the children.
        self._signals.append(signum)

    def _handle_signals(self) -> None:
        while self._signals_handled < len(self._signals):
            signum = self._signals[self._signals_handled]
            self._signals_handled += 1
            name = signal.Signals(signum).name
            if not self._stopping:
                self._stop(reason="signal", signal=name)
            else:
                # The children already had one SIGTERM (from a first signal,
                # or a stop after a configuration error or giving up).
                # A worker's second signal stops it at once: pass that on.
                self._log.warning("supervisor.stopping_now", signal=name, pids=self._pids())
                self._signal_all(signal.SIGTERM)

    def _stop(self, *, reason: str, **fields: Any) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._pending.clear()
        self._log.info("supervisor.stopping", reason=reason, pids=self._pids(), **fields)
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        for child in self._children.values():
            _signal(child.proc, signum)

    def _pids(self) -> list[int]:
        return [child.proc.pid for child in self._children.values()]

    # -- children ---------------------------------------------------------------

    def _start(self, slot: int) -> int:
        proc = subprocess.Popen(
            self.command,
            # A group of its own: Ctrl-C in a terminal reaches the supervisor
            # only, which passes it on once; the children must not count the
            # terminal's copy as a first signal and the supervisor's as a second.
            process_group=0,
            preexec_fn=self._preexec,
        )
        self._children[proc.pid] = _Child(slot, proc, time.monotonic())
        return proc.pid

    def _reap(self) -> None:
        for pid, child in list(self._children.items()):
            code = child.proc.poll()
            if code is None:
                continue
            del self._children[pid]
            now = time.monotonic()
            fields: dict[str, Any] = {"pid": pid, "code": code}
            if code < 0:
                fields["signal"] = _signal_name(-code)
            if self._stopping:
                self._final_codes.append(code)
                self._log.info("supervisor.child_exited", **fields, restarting_in=None)
                continue
            decision = self._restarts.exited(child.slot, code, now - child.started, now)
            if decision.action is Action.RESTART:
                self._pending[child.slot] = now + decision.delay
                log = self._log.info if code == 0 else self._log.warning
                log("supervisor.child_exited", **fields, restarting_in=decision.delay)
            elif decision.action is Action.STOP_CONFIGURATION:
                self._log.error(
                    "supervisor.child_exited",
                    **fields,
                    restarting_in=None,
                    hint="a configuration error (see the child's message): "
                    "every restart would fail the same way",
                )
                self._code = EXIT_CONFIGURATION
                self._stop(reason="configuration_error")
            else:
                self._log.error("supervisor.child_exited", **fields, restarting_in=None)
                self._log.error(
                    "supervisor.gave_up",
                    crashes=self._restarts.recent_crashes,
                    window=self.policy.window,
                    hint="the workers keep crashing soon after they start; see their logs",
                )
                self._code = EXIT_GAVE_UP
                self._stop(reason="gave_up")

    def _start_due(self) -> None:
        if self._stopping:
            return
        now = time.monotonic()
        for slot, due in list(self._pending.items()):
            if due <= now:
                del self._pending[slot]
                pid = self._start(slot)
                self._log.info("supervisor.child_started", pid=pid, slot=slot)


def _stop_with_parent() -> Callable[[], None] | None:
    """On Linux, what makes a child get SIGTERM when the supervisor dies (even by SIGKILL).

    A supervisor killed outright must not leave its workers running unseen:
    each then stops as after SIGTERM, gracefully. Elsewhere there is no such
    call, and `None` starts children without it.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    supervisor = os.getpid()

    def in_child() -> None:
        # Runs in the child between fork and exec; the supervisor has no threads.
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != supervisor:
            # It died before the call took effect: no worker to start.
            os._exit(0)

    return in_child


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:  # a real-time signal has no name of its own
        return str(signum)


#: prctl(2): the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


def _signal(proc: subprocess.Popen[bytes], signum: int) -> None:
    # Popen does nothing for a child it has already reaped, and ignores one
    # that exited between its check and the signal.
    proc.send_signal(signum)


def supervise(processes: int, argv: Sequence[str] | None = None) -> int:
    """Run `processes` workers with the command line of this one (`sys.argv` by default).

    Returns:
        0 if every child stopped cleanly after SIGTERM/SIGINT, 1 if one did not,
        2 if a child reported a configuration error, 3 if the children kept
        crashing and the supervisor gave up.
    """
    args = sys.argv[1:] if argv is None else argv
    command = [sys.executable, "-m", "pgjobs", *child_argv(args)]
    return Supervisor(command, processes).run()
