"""Real worker processes: submit -> done, a failing job, SIGKILL mid-run -> reaped, cancel -> cancelled."""

from __future__ import annotations

import os
import signal
import time

import pytest

from backend.jobs import queue
from backend.jobs.runner import log_path
from backend.jobs.spec import EvaluateSpec, TrainSpec
from store import jobs as store_jobs
from store import models as store_models
from store import weights as store_weights
from store.paths import weights_dir

TRAIN = {"dataset": "fashion_mnist", "widths": [16, 8], "epochs": 1, "batch_size": 128, "train_subset": 1000}


def wait_for(predicate, timeout=300.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def status(job_id):
    return store_jobs.get_job(job_id)["status"]


def finished(job_id):
    return status(job_id) in ("done", "failed", "cancelled")


def wait_exit(pid, timeout=60.0):
    wait_for(lambda: not queue.is_alive(pid), timeout, f"worker {pid} to exit")


def assert_store_consistent():
    """Every model row points at a complete, loadable weights file, and no temp file is left behind."""
    for h in store_models.list_models()["weights"]:
        store_weights.load_weights(h)  # verifies the hash
    leftovers = [p for p in weights_dir().rglob("*") if p.is_file() and (p.name.startswith(".") or
                                                                          p.suffix in (".part", ".tmp"))]
    assert leftovers == []


def test_failing_job_is_recorded_with_a_one_line_error_and_a_log():
    spec = EvaluateSpec(model_ids=(999,), eval={"metrics": ["accuracy"]})  # submit() would refuse it up front:
    job_id = store_jobs.create_job(spec.kind, spec.to_dict(), spec.key())  # record it as submit_job does,
    store_jobs.update_progress(job_id, 0.0, "queued", queue.WAITING)  # then let a real worker fail on it
    assert queue.start_queued() == [job_id]
    wait_for(lambda: finished(job_id), what="the job to finish")
    job = store_jobs.get_job(job_id)
    assert job["status"] == "failed" and job["error"] == "model 999 does not exist"
    log = log_path(job_id).read_text()
    assert "Traceback" in log and "model 999 does not exist" in log
    wait_exit(job["pid"])
    assert queue._children[job["pid"]].wait(timeout=60) == 1


@pytest.mark.realdata
def test_submitted_job_runs_to_done_in_a_worker():
    job_id = queue.submit(TrainSpec(name="w", train=TRAIN, n_models=2))
    assert store_jobs.get_job(job_id)["pid"] is not None
    wait_for(lambda: finished(job_id), what="the job to finish")
    job = store_jobs.get_job(job_id)
    assert job["status"] == "done", job["error"]
    assert job["progress"] == pytest.approx(1.0)
    assert len(job["result"]["model_ids"]) == 2
    assert store_models.get_model(job["result"]["model_ids"][0])["zoo_id"] == job["result"]["zoo_id"]
    wait_exit(job["pid"])
    assert queue._children[job["pid"]].wait(timeout=60) == 0
    assert "done" in log_path(job_id).read_text()


@pytest.mark.realdata
def test_sigkilled_worker_is_reaped_and_leaves_no_half_rows():
    job_id = queue.submit(TrainSpec(name="slow", train=TRAIN, n_models=40))
    pid = store_jobs.get_job(job_id)["pid"]
    wait_for(lambda: len(store_models.list_models()) >= 1, what="a first stored model")
    os.killpg(pid, signal.SIGKILL)
    wait_exit(pid)
    assert queue.reap() == [job_id]
    job = store_jobs.get_job(job_id)
    assert job["status"] == "failed" and "died" in job["error"]
    stored = len(store_models.list_models())
    assert 1 <= stored < 40
    assert_store_consistent()
    assert queue.reap() == []


@pytest.mark.realdata
def test_cancel_flag_stops_the_worker_cleanly():
    job_id = queue.submit(TrainSpec(name="slow", train=TRAIN, n_models=40))
    pid = store_jobs.get_job(job_id)["pid"]
    wait_for(lambda: store_jobs.get_job(job_id)["stage"] == "train", what="training to start")
    assert queue.cancel(job_id, grace=120) == "cancelled"
    job = store_jobs.get_job(job_id)
    assert job["status"] == "cancelled" and not job["error"]  # stopped by itself, not killed
    wait_exit(pid)
    assert queue._children[pid].wait(timeout=60) == 0
    assert_store_consistent()


@pytest.mark.realdata
def test_cancel_kills_a_worker_that_does_not_stop():
    job_id = queue.submit(TrainSpec(name="slow", train=TRAIN, n_models=40))
    pid = store_jobs.get_job(job_id)["pid"]
    os.kill(pid, signal.SIGSTOP)  # a hung worker: never reads its cancel flag
    try:
        assert queue.cancel(job_id, grace=1.0) == "cancelled"
    finally:
        if queue.is_alive(pid):
            os.kill(pid, signal.SIGCONT)
    wait_exit(pid)
    assert "killed" in store_jobs.get_job(job_id)["error"]
