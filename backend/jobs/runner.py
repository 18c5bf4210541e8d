"""run_job: execute one recorded job against the store, in whatever process calls it.

The worker process calls it for background jobs; the CLI calls it in-process for foreground ones. It
owns the job's lifecycle: running -> done | cancelled | failed. A failure is stored as one readable
line; the traceback goes to <home>/logs/JOB_ID.log (where a worker's stdout/stderr also go).
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from backend.jobs.context import JobContext
from backend.jobs.spec import executor_settings, spec_from_dict
from backend.progress import Cancelled
from store import jobs as store_jobs
from store import models as store_models
from store.jobs import FINAL_STATUSES, JobStatus
from store.paths import home_dir

TERMINAL = FINAL_STATUSES  # a job in one of these has ended
# Errors the user can act on: their message alone is the one-line error.
EXPECTED_ERRORS = ("ValueError", "DatasetUnavailable", "WeightsCorrupt", "StoreBusy", "StoreError", "MergeError",
                   "FileNotFoundError", "PermissionError", "ExecutorError")


def log_path(job_id: int, *, create: bool = True) -> Path:
    """<home>/logs/JOB_ID.log; create=False only names it (a listing must not write into the store folder)."""
    path = home_dir() / "logs"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path / f"{job_id}.log"


def one_line_error(exc: BaseException) -> str:
    """A readable single line: the message for errors users can act on, else 'Type: message'."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, OSError):  # a file problem the user can act on: '<file>: <what>', no '[Errno N]'
        from store.files import os_error_text

        return os_error_text(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if names & set(EXPECTED_ERRORS) else f"{type(exc).__name__}: {text}"


def job_eval_key(spec: dict) -> str | None:
    """The evaluation config key a merge (with evaluation) or evaluate job's results are stored under."""
    from backend.evaluate.config import EvalConfig

    config = spec.get("evaluate") if spec.get("kind") == "merge" else spec.get("eval")
    if config is None:
        return None
    return EvalConfig.from_dict(dict(config)).key()


def execute(spec, ctx: JobContext) -> dict:
    """Dispatch on the spec's kind; returns the job's small JSON result."""
    # torch: imported only when a job runs, not for `jobs list`
    from backend.jobs import evaluate_step, interpolate_step, merge_step, train_step

    if spec.kind == "train":
        zoo_id = train_step.train_zoo(spec, ctx)
        return {"zoo_id": zoo_id, "model_ids": train_step.zoo_model_ids(zoo_id)}
    if spec.kind == "merge":
        tree_ids = merge_step.build_merges(spec, ctx)
        from store import trees as store_trees

        result = {"tree_ids": tree_ids, "root_model_ids": [store_trees.get_tree(t)["root_model_id"] for t in tree_ids]}
        if spec.evaluate is not None:
            ids = sorted({mid for t in tree_ids for mid in merge_step.tree_model_ids(t)})
            result["evaluated"] = evaluate_step.evaluate_models(ids, spec.evaluate, ctx)
            result["eval_key"] = job_eval_key(spec.to_dict())  # Runs -> Compare opens this config
        return result
    if spec.kind == "evaluate":
        for mid in spec.model_ids:
            if store_models.get_model(int(mid)) is None:
                raise ValueError(f"model {mid} does not exist")
        return {"model_ids": list(spec.model_ids),
                "evaluated": evaluate_step.evaluate_models(spec.model_ids, spec.eval, ctx),
                "eval_key": job_eval_key(spec.to_dict())}
    if spec.kind == "interpolate":
        return interpolate_step.interpolate_pairs(spec, ctx)
    if spec.kind == "experiment":
        from backend.jobs.experiment import run_experiment

        result = run_experiment(spec, ctx)
        return result if isinstance(result, dict) else {"experiment_id": result}
    raise ValueError(f"unknown job kind {spec.kind!r}")


def close_job(job_id: int, status: str, *, patience: float | None = None, **fields) -> None:
    """finish_job, retried while the store is busy: a lock stall must not leave a finished job 'running'.

    Waits up to `patience` seconds in all (default: env REBASIN_FINISH_PATIENCE or 600) before giving up;
    then the worker exits and the reaper marks the job failed.
    """
    from store.db import StoreBusy

    if patience is None:
        patience = float(os.environ.get("REBASIN_FINISH_PATIENCE") or 600)
    deadline = time.monotonic() + patience
    delay = 0.5
    while True:
        try:
            store_jobs.finish_job(job_id, status, **fields)
            return
        except StoreBusy:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 10.0)


def run_job(job_id: int, *, echo: Callable[[str], None] | None = None, echo_interval: float = 0.5) -> str:
    """Run a recorded job to its end and return its final status ("done", "cancelled" or "failed")."""
    job = store_jobs.get_job(job_id)
    if job is None:
        raise ValueError(f"job {job_id} does not exist")
    if not store_jobs.start_job(job_id, os.getpid()):  # not queued: submit() may have marked it for us
        job = store_jobs.get_job(job_id)
        if job["status"] == JobStatus.CANCELLED:
            return JobStatus.CANCELLED
        if not (job["status"] == JobStatus.RUNNING and job.get("pid") == os.getpid()):
            raise ValueError(f"job {job_id} is {job['status']}; only a queued job can be run")
    ctx = JobContext(job_id, echo=echo, echo_interval=echo_interval)
    ctx.start_heartbeat()
    try:
        ctx.check_cancel(force=True)  # cancelled between submit and start
        spec = spec_from_dict(job["spec"])
        settings = executor_settings(job["spec"])
        if settings["kind"] != "local":  # connect (or start a local cluster) before any work
            from backend.jobs.executors import make_executor

            ctx.update(0.0, "connect", f"connecting to the {settings['kind']} cluster", force=True)
            ctx.executor = make_executor(settings)
        result = execute(spec, ctx)
        if isinstance(result, dict):
            result = {**result, "cache_hits": ctx.cache_hits}  # items found already stored (not recomputed)
            if ctx.executor is not None:
                result["executor"] = ctx.executor.describe()  # where it ran (Runs shows it)
            if ctx.damaged:  # models an evaluation skipped: their weights are damaged (store verify --repair)
                result["damaged_models"] = sorted(set(ctx.damaged))
    except (Cancelled, KeyboardInterrupt):
        close_job(job_id, JobStatus.CANCELLED)
        return JobStatus.CANCELLED
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job, none escapes the worker
        try:
            with open(log_path(job_id), "a") as log:
                log.write(traceback.format_exc())
        except OSError:  # a full disk must not keep the job from being closed
            pass
        close_job(job_id, JobStatus.FAILED, error=one_line_error(exc))
        return JobStatus.FAILED
    finally:
        ctx.stop_heartbeat()
        if ctx.executor is not None:
            try:
                ctx.executor.close()
            except Exception:  # noqa: BLE001 - a cluster that fails to shut down must not change the outcome
                pass
    close_job(job_id, JobStatus.DONE, result=json.loads(json.dumps(result)))
    return JobStatus.DONE
