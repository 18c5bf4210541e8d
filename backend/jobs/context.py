"""JobContext: the bridge between an algorithm's progress callback and a job row in the store.

Algorithms call `progress(event)` between steps (see backend/progress.py). A JobContext turns those
events into the job's overall progress, writes it to the store at most every `interval` seconds (and
always when the stage changes), and checks the job's cancel flag just as often, raising `Cancelled`
when it is set. Steps carve the job into spans (`ctx.span(start, end)`) so per-model events map onto
one 0..1 bar for the whole job.

The bar never goes backwards: an event that maps below what the job already showed (a MergeMany round
that starts over, a step that reports its start after its sub-steps) keeps the fraction where it was.
Steps name where the job is with `ctx.section("model 3 of 12")` (nested sections join with " · "), so the
job's message reads as the whole context ("stage 1 of 4 · training plain zoo · model 3 of 12 · epoch 2/5")
rather than the innermost algorithm's raw line; an event's metrics go only to the echoed CLI line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from backend.progress import Cancelled, ProgressEvent, ProgressFn


class JobContext:
    def __init__(self, job_id: int | None, *, echo: Callable[[str], None] | None = None,
                 interval: float = 0.5, echo_interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.job_id = job_id
        self.echo = echo  # foreground CLI: print a line per store write
        self.interval = interval
        self.echo_interval = interval if echo_interval is None else echo_interval  # log lines: sparser
        self._last_echo = float("-inf")
        self.clock = clock
        self.fraction = 0.0
        self.stage = ""
        self.message = ""
        self._heartbeat: tuple[threading.Thread, threading.Event] | None = None
        self._span = (0.0, 1.0)
        self._last_write = float("-inf")
        self._last_check = float("-inf")
        # progress writes and cancel checks wait this long for a busy store, then skip (None: the default)
        self.store_timeout: float | None = None
        self.missed_writes = 0
        self.damaged: list[int] = []  # models skipped because their weights file is missing or damaged
        self._sections: list[str] = []
        self.cache_hits = 0  # work items (models, trees, evaluations) found already stored
        self.measured_seconds = 0.0  # wall time of the work the steps recorded as rates
        self.executor = None  # where the steps run their units (backend/jobs/executors.py); None: in process

    @classmethod
    def null(cls) -> JobContext:
        """A context for in-process use and tests: no store writes, never cancelled."""
        return cls(None)

    # -- progress -------------------------------------------------------------------------------------

    def progress(self, event: ProgressEvent, *, force: bool = False) -> None:
        """A ProgressFn: maps the event into the current span, records it (throttled), checks cancel."""
        lo, hi = self._span
        fraction = lo + (hi - lo) * min(max(event.fraction, 0.0), 1.0)
        metrics = " ".join(f"{k}={v:.4g}" for k, v in event.metrics.items())
        self.update(fraction, event.stage, event.message, force=force, detail=metrics)

    @contextmanager
    def section(self, label: str) -> Iterator[None]:
        """Name the part of the job that runs inside (e.g. "model 3 of 12"); sections nest."""
        self._sections.append(label)
        try:
            yield
        finally:
            self._sections.pop()

    def context_text(self, message: str = "") -> str:
        """The open sections and `message`, joined with " · "."""
        return " · ".join(s for s in (*self._sections, message) if s)

    def span(self, start: float, end: float) -> ProgressFn:
        """Make following events fill [start, end] of the job's bar; returns self.progress for chaining."""
        self._span = (float(start), float(end))
        return self.progress

    @property
    def current_span(self) -> tuple[float, float]:
        return self._span

    @contextmanager
    def within(self) -> Iterator[Callable[[float, float], ProgressFn]]:
        """Nest: inside, sub(a, b) makes events fill [a, b] *of the span set by the caller*.

        Steps use this so a caller (e.g. an experiment) can give a whole step a slice of the bar; the
        caller's span is restored on exit.
        """
        outer = self._span
        lo, hi = outer

        def sub(a: float, b: float) -> ProgressFn:
            return self.span(lo + (hi - lo) * a, lo + (hi - lo) * b)

        try:
            yield sub
        finally:
            self._span = outer

    def update(self, fraction: float, stage: str, message: str = "", *, force: bool = False,
               detail: str = "") -> None:
        """Record overall progress; writes at most every `interval` s unless the stage changed or forced.

        The fraction never decreases; `message` is prefixed with the open sections; `detail` (an event's
        metrics) is echoed but not stored.
        """
        now = self.clock()
        changed = stage != self.stage
        fraction = max(float(fraction), self.fraction)
        message = self.context_text(message)
        self.fraction, self.stage, self.message = fraction, stage, message
        if force or changed or now - self._last_write >= self.interval:
            self._write(now)
            if self.echo is not None and (force or changed or now - self._last_echo >= self.echo_interval):
                self._last_echo = now
                line = " · ".join(s for s in (message, detail) if s)
                self.echo(f"[{fraction * 100:5.1f}%] {stage}: {line}".rstrip(": "))
        self.check_cancel(force=force)

    def _write(self, now: float) -> None:
        """Best effort: a store that stays busy past its timeout costs one progress line, never the job."""
        self._last_write = now
        if self.job_id is not None:
            from store import jobs
            from store.db import StoreBusy

            try:
                jobs.update_progress(self.job_id, float(self.fraction), self.stage, self.message,
                                     timeout=self.store_timeout)
            except StoreBusy:
                self.missed_writes += 1

    # -- heartbeat ------------------------------------------------------------------------------------

    def start_heartbeat(self, every: float = 10.0) -> None:
        """Keep the job's heartbeat fresh while one step runs long without progress events.

        The reaper (store.jobs.fail_dead_jobs) fails running jobs whose heartbeat is older than a
        minute; a single long LAP solve or evaluation must not look like a dead worker.
        """
        if self.job_id is None or self._heartbeat is not None:
            return
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(every):
                if self.clock() - self._last_write >= every:
                    try:
                        self._write(self.clock())
                    except Exception:  # noqa: BLE001 - a missed beat is retried; never kill the job for it
                        pass

        thread = threading.Thread(target=beat, name=f"job-{self.job_id}-heartbeat", daemon=True)
        thread.start()
        self._heartbeat = (thread, stop)

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            thread, stop = self._heartbeat
            stop.set()
            thread.join()
            self._heartbeat = None

    def seconds_since_start(self) -> float:
        """Wall seconds since the job's row says it started (a worker's start-up included: what the Runs
        table shows as its duration); 0 without a job or when the store cannot say. Best effort."""
        if self.job_id is None:
            return 0.0
        try:
            from store import jobs
            from store.db import utc_now

            started = (jobs.get_job(self.job_id) or {}).get("started_at")
            if started is None:
                return 0.0
            return max(0.0, (utc_now() - started).total_seconds())
        except Exception:  # noqa: BLE001 - a planning aid; never fails the job
            return 0.0

    # -- cancellation ---------------------------------------------------------------------------------

    def check_cancel(self, *, force: bool = False) -> None:
        """Raise Cancelled if the job's cancel flag is set (looked up at most every `interval` s)."""
        if self.job_id is None:
            return
        now = self.clock()
        if not force and now - self._last_check < self.interval:
            return
        self._last_check = now
        from store import jobs
        from store.db import StoreBusy

        try:
            requested = jobs.cancel_requested(self.job_id, timeout=self.store_timeout)
        except StoreBusy:  # looked up again at the next check
            self.missed_writes += 1
            return
        if requested:
            raise Cancelled(f"job {self.job_id} was cancelled")
