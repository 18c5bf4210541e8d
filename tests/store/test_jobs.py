"""store.jobs: lifecycle, progress/heartbeat, cancel flag, reaping dead workers."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from store import db
from store.jobs import (
    active_job_count,
    cancel_requested,
    create_job,
    fail_dead_jobs,
    find_active_job,
    finish_job,
    get_job,
    list_jobs,
    request_cancel,
    start_job,
    update_progress,
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_lifecycle():
    jid = create_job("train", {"n_models": 2, "train": {"epochs": 1}}, "k1")
    job = get_job(jid)
    assert job["status"] == "queued" and job["spec"] == {"n_models": 2, "train": {"epochs": 1}}
    assert job["progress"] == 0 and job["cancel_requested"] is False and job["heartbeat"] is None
    assert find_active_job("k1") == jid
    assert start_job(jid, os.getpid()) is True
    assert start_job(jid, os.getpid()) is False  # only a queued job can start
    job = get_job(jid)
    assert job["status"] == "running" and job["pid"] == os.getpid() and job["started_at"] is not None
    first_beat = job["heartbeat"]
    update_progress(jid, 0.4, "train", "model 1/2")
    job = get_job(jid)
    assert (job["progress"], job["stage"], job["message"]) == (0.4, "train", "model 1/2")
    assert job["heartbeat"] >= first_beat
    update_progress(jid, 7, "train", "overshoot")  # clamped into [0, 1]
    assert get_job(jid)["progress"] == 1.0
    finish_job(jid, "done", result={"zoo_id": 3})
    job = get_job(jid)
    assert job["status"] == "done" and job["result"] == {"zoo_id": 3} and job["finished_at"] is not None
    assert find_active_job("k1") is None
    assert create_job("train", {}, "k1") != jid  # re-submitting makes a new job


def test_list_jobs_filters_and_limit():
    ids = [create_job("merge", {"i": i}, f"k{i}") for i in range(5)]
    start_job(ids[1], 123)
    finish_job(ids[2], "failed", error="boom")
    assert list_jobs()["id"].tolist() == ids[::-1]
    assert list_jobs(limit=2)["id"].tolist() == ids[:2:-1][:2]
    assert list_jobs(status="running")["id"].tolist() == [ids[1]]
    assert sorted(list_jobs(status=("queued", "failed"))["id"]) == [ids[0], ids[2], ids[3], ids[4]]
    assert get_job(ids[2])["error"] == "boom"
    assert active_job_count() == 4
    with pytest.raises(ValueError, match="Job status"):
        list_jobs(status="sleeping")


def test_cancel_flag_and_queued_cancel():
    running = create_job("evaluate", {}, "a")
    start_job(running, os.getpid())
    assert cancel_requested(running) is False
    request_cancel(running)
    assert cancel_requested(running) is True and get_job(running)["status"] == "running"
    finish_job(running, "cancelled")
    assert get_job(running)["status"] == "cancelled"
    queued = create_job("evaluate", {}, "b")
    request_cancel(queued)
    assert get_job(queued)["status"] == "cancelled"
    assert start_job(queued, os.getpid()) is False


def test_bad_input_is_rejected():
    jid = create_job("train", {}, "k")
    with pytest.raises(ValueError, match="finished job"):
        finish_job(jid, "running")
    with pytest.raises(ValueError, match="no job"):
        update_progress(jid + 10, 0.5, "s", "m")
    with pytest.raises(ValueError, match="no job"):
        cancel_requested(jid + 10)
    with pytest.raises(ValueError, match="progress"):
        update_progress(jid, float("nan"))
    with pytest.raises(ValueError, match="JSON"):
        create_job("train", {"x": {1, 2}}, "k")


def test_fail_dead_jobs_marks_dead_pid_failed():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a pid that no longer runs
    dead = create_job("train", {}, "dead")
    alive = create_job("train", {}, "alive")
    start_job(dead, proc.pid)
    start_job(alive, os.getpid())
    assert fail_dead_jobs(_pid_alive) == [dead]
    job = get_job(dead)
    assert job["status"] == "failed" and job["error"] == f"worker process died (pid {proc.pid})"
    assert get_job(alive)["status"] == "running"
    assert fail_dead_jobs(_pid_alive) == []  # nothing more to reap


def test_fail_dead_jobs_marks_stale_heartbeat_failed():
    stale = create_job("train", {}, "stale")
    fresh = create_job("train", {}, "fresh")
    start_job(stale, os.getpid())
    start_job(fresh, os.getpid())
    with db.connect() as con:
        con.execute("UPDATE jobs SET heartbeat = ? WHERE id = ?", [db.utc_now() - timedelta(minutes=5), stale])
    assert fail_dead_jobs(lambda pid: True, stale_seconds=60) == [stale]
    assert "no heartbeat" in get_job(stale)["error"] and get_job(fresh)["status"] == "running"
