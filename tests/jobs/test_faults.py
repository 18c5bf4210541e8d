"""Injected faults around jobs: a lock stall never kills a job or leaves it 'running'; a SIGKILLed
worker's job (and its experiment) is closed by the next listing or worker start."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from backend.jobs import runner
from backend.progress import ProgressEvent
from store import db
from store import experiments as store_exps
from store import jobs as store_jobs
from tests.app.conftest import AT_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
HOLDER = ROOT / "tests" / "store" / "store_proc.py"


def _hold_lock() -> subprocess.Popen:
    """Another process that holds the store lock until it is killed."""
    proc = subprocess.Popen([sys.executable, str(HOLDER), "hold_lock"], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_lock_stall_longer_than_the_timeout_does_not_kill_the_job(monkeypatch):
    job_id = store_jobs.create_job("train", {"kind": "train"}, "stall")
    monkeypatch.setenv("REBASIN_LOCK_TIMEOUT", "0.3")
    monkeypatch.setenv("REBASIN_FINISH_PATIENCE", "60")
    seen = {}

    def execute(spec, ctx):  # the algorithm: reports progress while another process holds the store
        holder = _hold_lock()
        threading.Timer(2.0, holder.kill).start()  # the stall ends while the job is being closed
        for i in range(3):
            ctx.progress(ProgressEvent("train", i, 3, "step"), force=True)  # StoreBusy inside
            ctx.check_cancel(force=True)
        seen["missed"] = ctx.missed_writes
        return {"ok": 1}

    monkeypatch.setattr(runner, "execute", execute)
    monkeypatch.setattr(runner, "spec_from_dict", lambda d: d)
    assert runner.run_job(job_id) == "done"
    assert seen["missed"] >= 3
    job = store_jobs.get_job(job_id)
    assert job["status"] == "done" and job["result"]["ok"] == 1


def test_close_job_gives_up_only_after_its_patience(monkeypatch):
    calls = []

    def busy(*args, **kwargs):
        calls.append(time.monotonic())
        raise db.StoreBusy("busy")

    monkeypatch.setattr(store_jobs, "finish_job", busy)
    with pytest.raises(db.StoreBusy):
        runner.close_job(1, "failed", patience=1.2, error="x")
    assert len(calls) >= 2


def test_pages_say_store_busy_instead_of_an_exception(monkeypatch):
    store_jobs.create_job("train", {"kind": "train", "name": "z"}, "a")  # the schema exists
    monkeypatch.setenv("REBASIN_LOCK_TIMEOUT", "0.2")
    holder = _hold_lock()
    try:
        at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=AT_TIMEOUT)
        at.run()  # Home through the router: the router catches StoreBusy
        assert not at.exception, [e.value for e in at.exception]
        assert any("Store busy, retrying" in w.value for w in at.warning), [w.value for w in at.warning]
        at.switch_page("views/runs.py").run()  # Runs polls: it says so and polls again
        assert not at.exception, [e.value for e in at.exception]
        assert any("Store busy, retrying" in w.value for w in at.warning), [w.value for w in at.warning]
    finally:
        holder.kill()
        holder.wait()


def test_jobs_list_reaps_a_killed_worker_and_closes_its_experiment(capsys):
    from backend.cli import main

    job_id = store_jobs.create_job("experiment", {"kind": "experiment"}, "exp")
    store_jobs.start_job(job_id, _dead_pid())
    exp_id = store_exps.create_experiment("demo · fashion_mnist", "demo", "fashion_mnist", {}, "exp-key")
    store_exps.update_experiment(exp_id, status="running", job_id=job_id)
    assert main(["jobs", "list"]) == 0
    out = capsys.readouterr().out
    assert "failed" in out and "running" not in out
    assert store_jobs.get_job(job_id)["status"] == "failed"
    assert store_exps.get_experiment(exp_id)["status"] == "failed"


def test_jobs_show_reaps_too(capsys):
    from backend.cli import main

    job_id = store_jobs.create_job("train", {"kind": "train"}, "t")
    store_jobs.start_job(job_id, _dead_pid())
    assert main(["jobs", "show", str(job_id)]) == 0
    assert '"status": "failed"' in capsys.readouterr().out


def test_a_worker_start_reaps_dead_jobs():
    from backend.worker import main

    dead = store_jobs.create_job("train", {"kind": "train"}, "dead")
    store_jobs.start_job(dead, _dead_pid())
    other = store_jobs.create_job("evaluate", {"kind": "evaluate", "model_ids": [999],
                                               "eval": {"metrics": ["accuracy"]}}, "other")
    assert main([str(other)]) == 1  # model 999 does not exist: this job fails on its own
    assert store_jobs.get_job(dead)["status"] == "failed"


def test_cancelling_a_queued_experiment_job_closes_the_experiment():
    job_id = store_jobs.create_job("experiment", {"kind": "experiment"}, "q")
    exp_id = store_exps.create_experiment("x", "demo", "fashion_mnist", {}, "q-key")
    store_exps.update_experiment(exp_id, status="running", job_id=job_id)
    store_jobs.request_cancel(job_id)
    assert store_exps.get_experiment(exp_id)["status"] == "cancelled"


def test_a_job_row_with_a_non_json_spec_neither_crashes_runs_nor_stays_queued(monkeypatch):
    from types import SimpleNamespace

    from backend.jobs import queue

    monkeypatch.setattr(queue, "spawn_worker", lambda job_id: SimpleNamespace(pid=os.getpid()))  # we are the worker
    job_id = store_jobs.create_job("train", {"kind": "train", "name": "ok"}, "broken")
    with db.connect() as con:
        con.execute("UPDATE jobs SET spec = '{\"kind\": \"train\", broken' WHERE id = ?", [job_id])
    assert store_jobs.get_job(job_id)["spec"].startswith("{")  # readable as text, not an exception
    at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=AT_TIMEOUT)
    at.run()
    at.switch_page("views/runs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert runner.run_job(job_id) == "failed"
    job = store_jobs.get_job(job_id)
    assert job["status"] == "failed" and "not valid JSON" in job["error"] and "\n" not in job["error"]
