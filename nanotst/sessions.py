"""Training runs that outlive a browser tab: kept on the server under a private run id.

A page reload, or a dropped connection, starts a new browser session; its URL still carries the
run id, so the new session attaches to its own run again (the trainer, its settings, the active
model). A run is held by at most one live browser session: a link copied from the address bar
and opened elsewhere while its owner is connected gets a run of its own. The store is bounded in
number (and so in memory: a run's data is bounded by the Train page's limits) and forgets runs
that nobody has held for `idle_seconds`.

No streamlit here: the app passes an opaque holder object per browser session and calls
`release` when that session ends.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .app_state import TrainingSession

MAX_RUNS = 8
IDLE_SECONDS = 30 * 60


class RunStoreFull(RuntimeError):
    """Every slot is held by a live browser session; the message says what to do."""


@dataclass
class Run:
    """What a browser session gets back after a reload."""
    run_id: str
    training: TrainingSession
    active_choice: str | None = None              # the sidebar's active model
    widgets: dict = field(default_factory=dict)   # the Train page's settings, by widget key
    holder: object | None = None
    last_seen: float = field(default_factory=time.monotonic)


class RunStore:
    """Runs by id, thread-safe (every browser session runs in its own thread)."""

    def __init__(self, max_runs: int = MAX_RUNS, idle_seconds: float = IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.max_runs = max_runs
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._runs)

    def attach(self, run_id: str | None, holder: object) -> Run:
        """The run with this id if it exists and no other live session holds it, else a new run.
        The returned run is held by `holder` until `release(holder)`."""
        with self._lock:
            self._expire()
            run = self._runs.get(run_id) if isinstance(run_id, str) else None
            if run is not None and (run.holder is None or run.holder is holder):
                run.holder = holder
                run.last_seen = self._clock()
                return run
            return self._new(holder)

    def touch(self, run: Run) -> None:
        run.last_seen = self._clock()

    def release(self, holder: object) -> None:
        """The browser session `holder` ended: its run waits for a reload (until it expires)."""
        with self._lock:
            for run in self._runs.values():
                if run.holder is holder:
                    run.holder = None
                    run.training.pause()         # nobody is watching: stop spending the CPU
                    run.last_seen = self._clock()

    def _new(self, holder: object) -> Run:
        if len(self._runs) >= self.max_runs:
            # make room: first a run with nothing to lose (never started; its tab keeps working,
            # only a reload of it would start afresh), then the longest idle one nobody holds
            unstarted = [r for r in self._runs.values() if not r.training.started]
            free = [r for r in self._runs.values() if r.holder is None]
            victims = unstarted or free
            if not victims:
                raise RunStoreFull(f"{self.max_runs} training runs are open in other browser tabs; "
                                   f"close one or try again later")
            del self._runs[min(victims, key=lambda r: r.last_seen).run_id]
        run = Run(secrets.token_urlsafe(12), TrainingSession(), holder=holder, last_seen=self._clock())
        self._runs[run.run_id] = run
        return run

    def _expire(self) -> None:
        now = self._clock()
        for run_id in [r.run_id for r in self._runs.values()
                       if r.holder is None and now - r.last_seen > self.idle_seconds]:
            del self._runs[run_id]
