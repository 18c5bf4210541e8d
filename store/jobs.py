"""Jobs: one row per background run (train, merge, evaluate, experiment) and its live progress.

Lifecycle: queued -> running -> done | failed | cancelled. The worker calls start_job, then
update_progress between steps (which doubles as its heartbeat), then finish_job. Cancel is a flag the
worker polls (cancel_requested); a queued job that never started is cancelled at once.
fail_dead_jobs turns 'running' rows whose worker is gone into 'failed', so no job spins forever.
Timestamps are naive UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from store.db import connect, fetch_df, transaction, utc_now
from store.jsonutil import check_choice, check_id, check_key, dumps, fetch_dict, finite_or_none, loads

if TYPE_CHECKING:  # pandas is imported where a DataFrame is built: `jobs list` and --help stay light
    import pandas as pd


class JobStatus(StrEnum):
    """A job's status, declared once: the store, the backend (runner, queue, CLI) and the app read it from here.
    Members are plain strings ("queued", ...), so they compare, bind as SQL parameters and serialise as such."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


JOB_STATUSES = tuple(s.value for s in JobStatus)
_COLUMNS = ("id", "kind", "spec", "key", "status", "progress", "stage", "message", "pid", "heartbeat",
            "cancel_requested", "error", "result", "created_at", "started_at", "finished_at")
ACTIVE_STATUSES = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)  # a worker is or will be on it
FINAL_STATUSES = tuple(s for s in JOB_STATUSES if s not in ACTIVE_STATUSES)
_JSON = ("spec", "result")


def create_job(kind: str, spec: dict[str, Any], key: str) -> int:
    """Record a new queued job and return its id. Always a new row: the caller starts one worker per id
    (use find_active_job(key) first to avoid running the same spec twice at once)."""
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"A job kind must be a non-empty name, got {kind!r}.")
    values = [kind, dumps(spec), check_key(key), utc_now()]
    with transaction() as con:
        (job_id,) = con.execute(
            "INSERT INTO jobs (kind, spec, key, status, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
            [*values[:3], JobStatus.QUEUED, values[3]],
        ).fetchone()
    return int(job_id)


def find_active_job(key: str) -> int | None:
    """The newest queued or running job with this key, if any."""
    with connect() as con:
        row = con.execute(
            "SELECT id FROM jobs WHERE key = ? AND list_contains(?, status) ORDER BY id DESC LIMIT 1",
            [check_key(key), list(ACTIVE_STATUSES)],
        ).fetchone()
    return None if row is None else int(row[0])


def get_job(job_id: int) -> dict[str, Any] | None:
    """The job row with `spec` and `result` decoded, or None."""
    with connect() as con:
        row = fetch_dict(con, "SELECT * FROM jobs WHERE id = ?", [check_id(job_id, "job_id")])
    if row is not None:
        for name in _JSON:  # a damaged JSON field stays text (the runner fails that job with one line)
            try:
                row[name] = loads(row[name])
            except ValueError:
                pass
    return row


def _status_filter(status: str | tuple[str, ...] | None) -> tuple[str, list]:
    if status is None:
        return "", []
    wanted = [status] if isinstance(status, str) else list(status)
    for s in wanted:
        check_choice(s, JOB_STATUSES, "Job status")
    return " WHERE list_contains(?, status)", [wanted]


def list_jobs(*, status: str | tuple[str, ...] | None = None, limit: int = 200) -> pd.DataFrame:
    """Newest jobs first; `status` filters by one status or several. `spec`/`result` stay JSON text."""
    where, params = _status_filter(status)
    limit = check_id(limit, "limit")
    with connect() as con:
        return fetch_df(con, f"SELECT * FROM jobs{where} ORDER BY id DESC LIMIT {limit}", params)


def job_records(*, status: str | tuple[str, ...] | None = None, limit: int = 200,
                columns: tuple[str, ...] = ("id", "kind", "status", "progress", "stage", "message", "created_at")
                ) -> list[dict[str, Any]]:
    """list_jobs as plain dicts of `columns` (no pandas: what `jobs list` prints without loading it)."""
    for column in columns:
        if column not in _COLUMNS:
            raise ValueError(f"Unknown job column {column!r}.")
    where, params = _status_filter(status)
    limit = check_id(limit, "limit")
    with connect() as con:
        rows = con.execute(f"SELECT {', '.join(columns)} FROM jobs{where} ORDER BY id DESC LIMIT {limit}",
                           params).fetchall()
    return [dict(zip(columns, row, strict=True)) for row in rows]


def count_jobs(status: str | tuple[str, ...] | None = None) -> int:
    where, params = _status_filter(status)
    with connect() as con:
        (n,) = con.execute(f"SELECT count(*) FROM jobs{where}", params).fetchone()
    return int(n)


def _update(sql: str, params: list[Any], job_id: int, timeout: float | None = None) -> list[tuple]:
    with connect(timeout=timeout) as con, transaction(con):
        rows = con.execute(sql, params).fetchall()
        if not rows and con.execute("SELECT 1 FROM jobs WHERE id = ?", [job_id]).fetchone() is None:
            raise ValueError(f"There is no job {job_id}.")
    return rows


def start_job(job_id: int, pid: int) -> bool:
    """Mark a queued job running in process `pid`; False (and no change) when it is no longer queued
    (e.g. cancelled before the worker started) — the worker should then exit."""
    jid = check_id(job_id, "job_id")
    now = utc_now()
    rows = _update(
        "UPDATE jobs SET status = ?, pid = ?, started_at = ?, heartbeat = ? WHERE id = ? AND status = ? RETURNING id",
        [JobStatus.RUNNING, check_id(pid, "pid"), now, now, jid, JobStatus.QUEUED], jid,
    )
    return bool(rows)


def update_progress(job_id: int, progress: float, stage: str = "", message: str = "", *,
                    timeout: float | None = None) -> None:
    """Progress in [0, 1] (clamped), the current stage and a line for the user; also the heartbeat.
    `timeout`: how long to wait for a busy store (StoreBusy after it; None: the store's default)."""
    jid = check_id(job_id, "job_id")
    fraction = min(1.0, max(0.0, finite_or_none(progress, "progress") or 0.0))
    _update("UPDATE jobs SET progress = ?, stage = ?, message = ?, heartbeat = ? WHERE id = ? RETURNING id",
            [fraction, str(stage), str(message), utc_now(), jid], jid, timeout)


def finish_job(job_id: int, status: str, *, error: str | None = None, result: Any = None) -> None:
    """Close a job as done, failed or cancelled (done sets progress to 1)."""
    jid = check_id(job_id, "job_id")
    check_choice(status, FINAL_STATUSES, "A finished job's status")
    result_text = None if result is None else dumps(result)
    with transaction() as con:
        _update(
            "UPDATE jobs SET status = ?, error = ?, result = ?, finished_at = ?, "
            "progress = CASE WHEN ? THEN 1.0 ELSE progress END WHERE id = ? RETURNING id",
            [status, error, result_text, utc_now(), status == JobStatus.DONE, jid], jid,
        )
        if status != JobStatus.DONE:
            _close_experiments(con, jid, status)


def _close_experiments(con, job_id: int, status: str) -> None:
    """An experiment run by a job that failed or was cancelled is closed with it (never left 'running')."""
    con.execute("UPDATE experiments SET status = ? WHERE job_id = ? AND list_contains(?, status)",
                [status, job_id, list(ACTIVE_STATUSES)])


def request_cancel(job_id: int) -> None:
    """Ask the worker to stop at its next step; a job still queued is cancelled right away."""
    jid = check_id(job_id, "job_id")
    now = utc_now()
    with transaction() as con:
        rows = con.execute("UPDATE jobs SET cancel_requested = TRUE WHERE id = ? RETURNING status", [jid]).fetchall()
        if not rows:
            raise ValueError(f"There is no job {jid}.")
        if rows[0][0] == JobStatus.QUEUED:
            con.execute("UPDATE jobs SET status = ?, finished_at = ?, error = 'cancelled before it started' "
                        "WHERE id = ?", [JobStatus.CANCELLED, now, jid])
            _close_experiments(con, jid, JobStatus.CANCELLED)


def cancel_requested(job_id: int, *, timeout: float | None = None) -> bool:
    with connect(timeout=timeout) as con:
        row = con.execute("SELECT cancel_requested FROM jobs WHERE id = ?", [check_id(job_id, "job_id")]).fetchone()
    if row is None:
        raise ValueError(f"There is no job {job_id}.")
    return bool(row[0])


def fail_dead_jobs(is_alive: Callable[[int], bool], stale_seconds: float = 60) -> list[int]:
    """Mark 'running' jobs failed when their pid is dead or their heartbeat is older than `stale_seconds`;
    return their ids. `is_alive` is called outside the store lock."""
    with connect() as con:
        running = con.execute("SELECT id, pid, heartbeat FROM jobs WHERE status = ?", [JobStatus.RUNNING]).fetchall()
    if not running:
        return []
    cutoff = utc_now() - timedelta(seconds=float(stale_seconds))
    verdicts = []
    for job_id, pid, heartbeat in running:
        if pid is None or not is_alive(int(pid)):
            verdicts.append((job_id, f"worker process died (pid {pid})", None))
        elif heartbeat is None or heartbeat < cutoff:
            verdicts.append((job_id, f"worker process died (pid {pid}): no heartbeat for over "
                                     f"{float(stale_seconds):g} s", cutoff))
    failed = []
    now = utc_now()
    with transaction() as con:
        for job_id, error, stale_cutoff in verdicts:
            # re-check under the lock: the job may have finished or beaten since we looked
            sql = "UPDATE jobs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status = ?"
            params: list[Any] = [JobStatus.FAILED, error, now, job_id, JobStatus.RUNNING]
            if stale_cutoff is not None:
                sql += " AND (heartbeat IS NULL OR heartbeat < ?)"
                params.append(stale_cutoff)
            if con.execute(sql + " RETURNING id", params).fetchall():
                failed.append(int(job_id))
                _close_experiments(con, int(job_id), JobStatus.FAILED)
    return failed


def active_job_count() -> int:
    with connect() as con:
        (n,) = con.execute("SELECT count(*) FROM jobs WHERE list_contains(?, status)", [list(ACTIVE_STATUSES)]).fetchone()
    return int(n)
