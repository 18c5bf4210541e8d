"""Submit jobs to worker processes, cancel them, and notice workers that died.

A job is a row in the store plus a `python -m backend.worker JOB_ID` process in its own session (so
the UI never blocks, and cancel can kill the worker's whole process group as a last resort). The
worker's stdout/stderr go to <home>/logs/JOB_ID.log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from backend.jobs.runner import TERMINAL, log_path
from store import jobs as store_jobs
from store.jobs import JobStatus

_children: dict[int, subprocess.Popen] = {}  # workers this process started (polled, so none is left a zombie)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


WAITING = "waiting for a free worker"  # the message of a submitted job that no worker has taken yet
DEFAULT_MAX_WORKERS = 2  # background workers at once; the rest wait as 'queued' (env REBASIN_MAX_WORKERS)


def max_workers() -> int:
    raw = os.environ.get("REBASIN_MAX_WORKERS")
    try:
        return max(1, int(raw)) if raw else DEFAULT_MAX_WORKERS
    except ValueError:
        raise ValueError(f"REBASIN_MAX_WORKERS must be a whole number, got {raw!r}.") from None


def submit(spec) -> int:
    """Validate, record the job and start its worker (or leave it queued); returns the job id. The same
    spec already queued or running is joined: its job id is returned and nothing new is recorded."""
    return submit_job(spec)[0]


def submit_job(spec) -> tuple[int, bool]:
    """submit(), also saying whether an identical active job was joined instead of a new one recorded."""
    from backend.jobs.preflight import check_inputs
    from store.db import transaction

    check_inputs(spec)  # the whole input, against the store and this machine: bad input writes nothing
    key = spec.key()
    with transaction():  # look-up and insert under one lock: two identical requests cannot both record
        existing = store_jobs.find_active_job(key)
        if existing is None:
            job_id = store_jobs.create_job(spec.kind, spec.to_dict(), key)
            # marks it for a background worker (a foreground job, queued only for a moment, never is)
            store_jobs.update_progress(job_id, 0.0, "queued", WAITING)
    if existing is not None:
        return existing, True
    start_queued()
    return job_id, False


def start_queued() -> list[int]:
    """Start workers for queued jobs, oldest first, while fewer than max_workers() jobs run."""
    from filelock import FileLock

    from store.paths import home_dir

    started = []
    with FileLock(str(home_dir() / "dispatch.lock"), timeout=60):  # one dispatcher at a time
        running = store_jobs.count_jobs(JobStatus.RUNNING)
        queued = store_jobs.job_records(status=JobStatus.QUEUED, limit=10_000, columns=("id", "message"))
        for job_id in sorted(int(r["id"]) for r in queued if r["message"] == WAITING):
            if running >= max_workers():
                break
            proc = spawn_worker(int(job_id))
            if store_jobs.start_job(int(job_id), proc.pid):  # the pid is known from now on: reap() can judge it
                started.append(int(job_id))
                running += 1
    return started


def spawn_worker(job_id: int) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    with open(log_path(job_id), "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "backend.worker", str(job_id)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    _children[proc.pid] = proc
    return proc


def is_alive(pid: int | None) -> bool:
    """Whether a worker pid still runs, treating our own exited children and zombies as dead."""
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None:  # our own worker: poll() also reaps it, so it never lingers as a zombie
        return child.poll() is None
    from store.files import pid_alive

    return pid_alive(pid)


def reap(*, dispatch: bool = True) -> list[int]:
    """Mark running jobs whose worker is gone as failed (and close their experiments); remove the temp
    files killed writers left behind; with dispatch, start queued jobs in the places that freed up.
    Returns the failed job ids."""
    from store.db import read_only_reason
    from store.files import sweep_store_orphans

    if read_only_reason() is not None:  # a read-only store is only browsed: nothing to mark, nothing to start
        return []
    failed = store_jobs.fail_dead_jobs(is_alive)
    try:
        sweep_store_orphans()
    except OSError:
        pass
    if dispatch and (failed or store_jobs.count_jobs(JobStatus.QUEUED)):
        start_queued()  # dead workers free their places for queued jobs
    return failed


reap_dead_jobs = reap


def cancel(job_id: int, *, grace: float = 10.0, wait: bool = True) -> str:
    """Ask a job to stop; if its worker has not stopped within `grace` s, kill its process group.

    Returns the job's status afterwards. With wait=False only the flag is set (the worker stops at its
    next check, within about half a second of work).
    """
    job = store_jobs.get_job(job_id)
    if job is None:
        raise ValueError(f"job {job_id} does not exist")
    if job["status"] in TERMINAL:
        return job["status"]
    store_jobs.request_cancel(job_id)  # a job still queued is cancelled right here
    pid = job.get("pid")
    if store_jobs.get_job(job_id)["status"] in TERMINAL or not wait:
        return store_jobs.get_job(job_id)["status"]
    status = _wait_terminal(job_id, grace, pid)
    if status in TERMINAL:
        return status
    _kill_group(pid)
    status = store_jobs.get_job(job_id)["status"]
    if status not in TERMINAL:
        store_jobs.finish_job(job_id, JobStatus.CANCELLED, error="worker did not stop in time and was killed")
        status = JobStatus.CANCELLED
    return status


def _wait_terminal(job_id: int, timeout: float, pid: int | None) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = store_jobs.get_job(job_id)["status"]
        if status in TERMINAL or time.monotonic() >= deadline or not is_alive(pid):
            return status
        time.sleep(0.2)


def _kill_group(pid: int | None, term_wait: float = 3.0) -> None:
    """SIGTERM the worker's process group, then SIGKILL what is left. Only groups the worker leads."""
    if not pid or not is_alive(pid):
        return
    try:
        if os.getpgid(pid) != pid:  # not a session leader we started: never signal a reused pid's group
            return
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + term_wait
        while is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if is_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        child = _children.pop(pid, None)
        if child is not None:
            child.wait(timeout=5)
    except ProcessLookupError:
        pass
