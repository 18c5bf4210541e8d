"""What a running job tells the user: its bar never goes backwards (MergeMany rounds included), its message
names the whole context, and its steps record work rates and training curves as they run."""

from __future__ import annotations

import pytest

from backend.jobs import train_step
from backend.jobs.context import JobContext
from backend.jobs.runner import run_job
from backend.jobs.spec import MergeSpec, TrainSpec
from store import jobs as store_jobs
from tests.jobs.fakes import patch_tiny_data

TRAIN = {"dataset": "fashion_mnist", "widths": [8, 6], "epochs": 3, "batch_size": 32, "lr": 0.01}


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    patch_tiny_data(monkeypatch)


def _record_writes(monkeypatch) -> list[tuple[float, str, str]]:
    writes = []
    original = store_jobs.update_progress

    def spy(job_id, progress, stage="", message="", **kwargs):
        writes.append((progress, stage, message))
        original(job_id, progress, stage, message, **kwargs)

    monkeypatch.setattr(store_jobs, "update_progress", spy)
    return writes


def test_a_recorded_merge_many_job_never_goes_backwards(monkeypatch):
    zoo_id = train_step.train_zoo(TrainSpec(name="tiny", train=TRAIN, n_models=6), JobContext.null())
    leaves = train_step.zoo_model_ids(zoo_id)
    spec = MergeSpec(model_ids=tuple(leaves), methods=("hierarchical", "merge_many", "average"))
    job = store_jobs.create_job(spec.kind, spec.to_dict(), spec.key())
    writes = _record_writes(monkeypatch)
    monkeypatch.setattr(JobContext, "__init__", _every_event(JobContext.__init__))
    assert run_job(job) == "done"
    fractions = [w[0] for w in writes]
    assert len(writes) > 10 and fractions == sorted(fractions)
    many = [m for _, stage, m in writes if stage == "merge_many"]
    assert any(m.startswith("method 2 of 3: MergeMany · round 1 · model ") for m in many), many
    assert any("round 2" in m for m in many), "six random leaves need a second MergeMany round"
    assert any(m.startswith("method 1 of 3: hierarchical · level 1 · merge 1 of 5") for _, _, m in writes)
    result = store_jobs.get_job(job)["result"]
    assert result["cache_hits"] == 0
    job2 = store_jobs.create_job(spec.kind, spec.to_dict(), spec.key())
    assert run_job(job2) == "done" and store_jobs.get_job(job2)["result"]["cache_hits"] == 3  # three trees


def _every_event(init):
    """JobContext with no write throttling, so the test sees every event the job reports."""
    def wrapped(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "interval": 0.0})
    return wrapped


def test_an_experiment_reports_monotone_progress_with_its_stages(monkeypatch):
    from backend.jobs.spec import ExperimentSpec

    overrides = {"widths": [8, 6], "epochs": 2, "batch_size": 64, "train_subset": None, "trees": [[1, 4]],
                 "reg_models": 1, "eval": {"metrics": ["accuracy"], "subset": 32}}
    spec = ExperimentSpec(preset="quick", dataset="fashion_mnist", overrides=overrides)
    job = store_jobs.create_job(spec.kind, spec.to_dict(), spec.key())
    writes = _record_writes(monkeypatch)
    monkeypatch.setattr(JobContext, "__init__", _every_event(JobContext.__init__))
    assert run_job(job) == "done"
    fractions = [w[0] for w in writes]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    messages = [m for _, _, m in writes]
    assert "stage 1 of 4 · training plain zoo · model 3 of 4 · epoch 2/2" in messages
    assert any(m.startswith("stage 2 of 4 · merging · tree 1 of 1 (4 leaves) · method 2 of 3: MergeMany")
               for m in messages)
    assert any(m.startswith("stage 3 of 4 · evaluating 11 models · model 1 of 11 · ") for m in messages)

    from store import rates
    from store import train_curves as curves
    recorded = rates.recent_rates("cpu", __import__("torch").get_num_threads())
    assert {"train", "merge", "evaluate", "overhead"} <= set(recorded["phase"])
    points = curves.curves(job_id=job)
    assert len(points) == 6 * 2  # 4 plain + 1 L1 + 1 L2 models, 2 epochs each
    assert points["model_id"].notna().all() and points["loss"].gt(0).all() and points["acc"].between(0, 1).all()


def test_a_zoo_trained_with_curve_every_records_step_points_for_the_live_curve():
    """TrainSpec.curve_every = N: besides each epoch's mean, every N steps a point (the mean since the last
    one) per model, stored as it trains; Runs' live chart draws those, Zoo's bands the epoch means."""
    from backend.charts import training_chart
    from store import train_curves as curves

    spec = TrainSpec(name="stepped", train={**TRAIN, "train_subset": 256}, n_models=2, curve_every=2)
    assert "curve_every" not in TrainSpec(name="x", train=TRAIN, n_models=2).to_dict()  # old specs keep their keys
    job = store_jobs.create_job(spec.kind, spec.to_dict(), spec.key())
    assert run_job(job) == "done"
    points = curves.curves(job_id=job)
    epochs, stepped = points[points["step"].isna()], points[points["step"].notna()]
    assert len(epochs) == 2 * 3 and set(epochs["epoch"]) == {1.0, 2.0, 3.0}
    assert len(stepped) == 2 * 12 and set(stepped["step"]) == {2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24}
    assert sorted(set(stepped["epoch"]))[:2] == pytest.approx([0.25, 0.5])  # 8 steps of 32 per epoch
    live = training_chart(points, "loss", band=False)
    assert len(live["datasets"]["lines"]) == 2 * 12 and "training steps" in live["title"]["subtitle"]
    assert len(training_chart(points, "loss")["datasets"]["lines"]) == 2 * 3  # bands compare epoch means
    from backend.figures import figure_bytes

    assert figure_bytes(training_chart(points, "acc"), "svg").startswith(b"<svg")  # a valid spec, as a file too
    with pytest.raises(ValueError, match="choose a larger N"):
        TrainSpec(name="x", train={**TRAIN, "train_subset": None}, n_models=1, curve_every=1).validate()
