"""Identical concurrent requests join the running job instead of computing twice; at most
max_workers() workers run at once, the rest wait as 'queued' and start as places free up."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from backend.jobs import queue
from backend.jobs.spec import EvaluateSpec
from store import jobs as store_jobs


@pytest.fixture
def spawned(monkeypatch):
    started = []

    def fake_spawn(job_id):
        started.append(job_id)
        return SimpleNamespace(pid=os.getpid())

    monkeypatch.setattr(queue, "spawn_worker", fake_spawn)
    # these tests are about joining and the worker cap, not about input: their models need not exist
    # (backend.jobs.preflight, tested in test_preflight.py, would refuse them before any row)
    from backend.jobs import preflight

    monkeypatch.setattr(preflight, "check_inputs", lambda spec: spec.validate())
    return started


def _spec(i=1):
    return EvaluateSpec(model_ids=(i,), eval={"metrics": ["accuracy"]})


def test_an_identical_request_joins_the_active_job(spawned):
    first, joined = queue.submit_job(_spec())
    assert not joined
    again, joined = queue.submit_job(_spec())
    assert (again, joined) == (first, True)
    assert len(store_jobs.list_jobs()) == 1 and spawned == [first]
    store_jobs.finish_job(first, "done")
    third, joined = queue.submit_job(_spec())  # finished: the same spec may run again (cache hits)
    assert third != first and not joined


def test_the_foreground_cli_refuses_to_run_what_is_already_running(spawned):
    import argparse

    from backend.cli.common import run_spec

    job_id = queue.submit(_spec(5))
    with pytest.raises(ValueError, match=f"already queued or running as job {job_id}"):
        run_spec(_spec(5), argparse.Namespace(background=False, quiet=True))
    assert run_spec(_spec(5), argparse.Namespace(background=True, quiet=True)) == (0, None)  # joined
    assert len(store_jobs.list_jobs()) == 1


def test_workers_are_capped_and_queued_jobs_start_when_places_free(spawned, monkeypatch):
    monkeypatch.setenv("REBASIN_MAX_WORKERS", "2")
    ids = [queue.submit(_spec(i)) for i in (1, 2, 3)]
    assert spawned == ids[:2]
    assert [store_jobs.get_job(i)["status"] for i in ids] == ["running", "running", "queued"]
    store_jobs.finish_job(ids[0], "done")
    assert queue.start_queued() == [ids[2]]
    assert store_jobs.get_job(ids[2])["status"] == "running"
    assert queue.start_queued() == []
