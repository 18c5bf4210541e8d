"""JobContext: throttled progress writes, stage changes always written, cancel flag -> Cancelled."""

from __future__ import annotations

import pytest

from backend.jobs.context import JobContext
from backend.progress import Cancelled, ProgressEvent, report
from store import jobs as store_jobs


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_writes_are_throttled_but_stage_changes_always_land():
    job = store_jobs.create_job("train", {"kind": "train"}, "k")
    clock = FakeClock()
    lines = []
    ctx = JobContext(job, echo=lines.append, clock=clock)
    for i in range(10):  # ten events within 0.09 s: one write (the first, a new stage)
        clock.now = i * 0.01
        report(ctx.progress, "train", i, 10)
    assert len(lines) == 1
    ctx.span(0.9, 1.0)
    report(ctx.progress, "merge", 0, 4)  # new stage: written at once
    assert len(lines) == 2 and store_jobs.get_job(job)["stage"] == "merge"
    clock.now = 1.0
    report(ctx.progress, "merge", 2, 4, "half")
    row = store_jobs.get_job(job)
    assert len(lines) == 3 and row["progress"] == pytest.approx(0.95) and row["message"] == "half"


def test_progress_never_goes_backwards_and_names_its_context():
    ctx = JobContext(None)
    with ctx.section("stage 1 of 4 · training plain zoo"), ctx.section("model 3 of 12"):
        report(ctx.progress, "train", 6, 10, "epoch 2/5", loss=0.5)
    assert ctx.message == "stage 1 of 4 · training plain zoo · model 3 of 12 · epoch 2/5"
    report(ctx.progress, "train", 1, 10, "restarted")  # a round that starts over
    assert ctx.fraction == pytest.approx(0.6) and ctx.message == "restarted"


def test_spans_nest_and_restore():
    ctx = JobContext(None)
    ctx.span(0.5, 1.0)
    with ctx.within() as sub:
        progress = sub(0.0, 0.5)  # -> [0.5, 0.75] of the job
        progress(ProgressEvent("x", 1, 2))
        assert ctx.fraction == pytest.approx(0.625)
    assert ctx.current_span == (0.5, 1.0)


def test_cancel_flag_raises_at_the_next_check():
    job = store_jobs.create_job("train", {"kind": "train"}, "k")
    store_jobs.start_job(job, 12345)
    clock = FakeClock()
    ctx = JobContext(job, clock=clock)
    report(ctx.progress, "train", 0, 10)
    store_jobs.request_cancel(job)
    clock.now = 0.1
    report(ctx.progress, "train", 1, 10)  # within the interval: not looked up yet
    clock.now = 0.7
    with pytest.raises(Cancelled):
        report(ctx.progress, "train", 2, 10)
    with pytest.raises(Cancelled):
        ctx.check_cancel(force=True)


def test_null_context_never_touches_the_store(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("store written")

    monkeypatch.setattr(store_jobs, "update_progress", boom)
    monkeypatch.setattr(store_jobs, "cancel_requested", boom)
    ctx = JobContext.null()
    for i in range(3):
        report(ctx.progress, "train", i, 3)
    ctx.check_cancel(force=True)
    ctx.start_heartbeat()
    assert ctx.fraction == pytest.approx(2 / 3)
