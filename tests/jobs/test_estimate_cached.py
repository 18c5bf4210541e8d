"""Estimates count only the work a job will do: what the store already holds (models by key, complete trees,
evaluation rows, interpolation curves) costs nothing, on a real store filled by real (tiny) jobs.

No timing assertions: every comparison is between two estimates from the same rates."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from backend import estimate, experiment
from backend.jobs import evaluate_step, merge_step, train_step
from backend.jobs.context import JobContext
from backend.jobs.experiment import run_experiment
from backend.jobs.spec import EvaluateSpec, ExperimentSpec, MergeSpec, TrainSpec
from store.db import StoreBusy, utc_now
from tests.jobs.fakes import patch_tiny_data

TRAIN = {"dataset": "fashion_mnist", "widths": [8, 6], "epochs": 2, "batch_size": 32, "lr": 0.01}
EVAL = {"metrics": ["accuracy", "fgsm", "weight_norm"], "fgsm_eps": [0.0, 0.01, 0.02], "subset": 64}
TINY = experiment.ExperimentPlan(
    preset="tiny", widths=(8, 6), epochs=2, batch_size=64, train_subset=256, trees=((1, 4),), reg_models=1,
    eval={"metrics": ["accuracy", "fgsm", "weight_norm"], "subset": 64}, variants=({"repair": True},),
    connectivity={"lam_grid": [0, 0.5, 1], "aligns": ["none", "weight"], "images": 64, "test_subset": 64},
    note="a tiny test preset")
PHASES = ("train", "merge", "evaluate", "overhead", "total", "low", "high")


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    patch_tiny_data(monkeypatch)
    monkeypatch.setitem(experiment.PRESETS, "tiny", TINY)


def _figures(est: dict) -> dict:
    return {p: est[p] for p in PHASES}


def test_a_finished_experiment_costs_only_its_overhead_and_the_cli_says_why(capsys, monkeypatch):
    plan = experiment.plan_for("tiny")
    spec = ExperimentSpec(preset="tiny", dataset="fashion_mnist")
    before = estimate.estimate_breakdown(plan, measure=False)
    assert _figures(before) == _figures(estimate.estimate_breakdown(plan, measure=False, cached=False))
    assert {p: c["done"] for p, c in before["cached"].items()} == {
        "train": 0, "merge": 0, "evaluate": 0, "interpolate": 0}
    assert "already stored" not in estimate.describe_range(before)
    started = utc_now()

    run_experiment(spec, JobContext.null())

    again = estimate.estimate_breakdown(plan, measure=False)
    full = estimate.estimate_breakdown(plan, measure=False, cached=False)
    assert again["train"] == again["merge"] == again["evaluate"] == 0.0 < full["train"]
    assert again["total"] == again["overhead"] < full["total"]
    # 2 × 1 + 4 plain models; hierarchical, MergeMany, average and the REPAIR tree; 6 + 3 + 1 + 1 + 3 nodes;
    # the 3 merged nodes' parent pairs of both hierarchical trees
    assert {p: (c["done"], c["total"], c["unit"]) for p, c in again["cached"].items()} == {
        "train": (6, 6, "models"), "merge": (4, 4, "trees"), "evaluate": (14, 14, "evaluations"),
        "interpolate": (6, 6, "curves")}
    assert estimate.describe_range(again).endswith(
        "— 6 of 6 models, 4 of 4 trees, 14 of 14 evaluations and 6 of 6 curves already stored")
    assert _figures(estimate.job_estimate("experiment", spec.to_dict())) == _figures(again)
    # a job that started before any of it was stored (Runs: a running job) is priced in full
    assert _figures(estimate.job_estimate("experiment", spec.to_dict(), before=started)) == _figures(full)

    # one more L1 and L2 model: those zoos are new (a zoo's key names its size), the plain zoo and its trees
    # are stored, so only 4 models train and only they are evaluated
    more = dataclasses.replace(plan, reg_models=2)
    extra = estimate.estimate_breakdown(more, measure=False)
    assert extra["cached"]["train"]["done"] == 4 and extra["cached"]["evaluate"]["done"] == 12
    assert extra["train"] == pytest.approx(estimate.estimate_breakdown(more, measure=False, cached=False)["train"]
                                           * 4 / 8)
    assert extra["merge"] == 0.0 and extra["interpolate_units"] == 0.0
    sizes = estimate.layer_sizes(plan.dataset, plan.widths)
    assert extra["evaluate_units"] == estimate.eval_units(sizes, plan.eval_config(), 4, 10000)
    # the same work over other seeds: nothing stored, priced exactly as without the lookup
    fresh = dataclasses.replace(plan, seed=1)
    assert _figures(estimate.estimate_breakdown(fresh, measure=False)) == _figures(
        estimate.estimate_breakdown(fresh, measure=False, cached=False))

    from backend.cli import main

    monkeypatch.setattr("backend.data.dataset_status", lambda name: "available")
    assert main(["experiment", "--preset", "tiny", "--dataset", "fashion_mnist", "--estimate"]) == 0
    out = capsys.readouterr().out
    assert "6 of 6 models, 4 of 4 trees, 14 of 14 evaluations and 6 of 6 curves already stored: not recomputed" \
        in out, out


def test_train_merge_evaluate_jobs_price_only_what_is_missing():
    train = TrainSpec(name="tiny", train=TRAIN, n_models=4)
    started = utc_now()
    leaves = train_step.zoo_model_ids(train_step.train_zoo(train, JobContext.null()))
    config = train.train_config()

    est = estimate.job_estimate("train", train.to_dict())
    assert est["train"] == 0.0 and est["cached"] == {"train": {"done": 4, "total": 4, "unit": "models"}}
    assert "4 of 4 models already stored" in estimate.describe_range(est)
    assert estimate.job_estimate("train", train.to_dict(), before=started)["train"] == pytest.approx(
        estimate.train_estimate(config, 4)["train"])  # as the job saw it when it started: nothing stored
    bigger = dataclasses.replace(train, n_models=5)  # another zoo (its key names its size): all of it trains
    assert estimate.job_estimate("train", bigger.to_dict())["train"] == pytest.approx(
        estimate.train_estimate(config, 5)["train"])

    merge = MergeSpec(model_ids=tuple(leaves), methods=("hierarchical",), evaluate=EVAL)
    tree_ids = merge_step.build_merges(merge, JobContext.null())
    evaluate_step.evaluate_models(sorted({m for t in tree_ids for m in merge_step.tree_model_ids(t)}), EVAL,
                                  JobContext.null())
    est = estimate.job_estimate("merge", merge.to_dict())
    assert est["merge"] == est["evaluate"] == 0.0
    assert est["cached"] == {"merge": {"done": 1, "total": 1, "unit": "trees"},
                             "evaluate": {"done": 7, "total": 7, "unit": "evaluations"}}

    # one more method over the same leaves: only its tree is built and only its one node is evaluated
    from backend.evaluate.config import EvalConfig

    both = dataclasses.replace(merge, methods=("hierarchical", "merge_many"))
    est = estimate.job_estimate("merge", both.to_dict())
    ev = EvalConfig.from_dict(EVAL)
    assert est["merge"] == pytest.approx(estimate.merge_estimate(("merge_many",), 4, "fashion_mnist", [8, 6])["merge"])
    assert est["evaluate"] == pytest.approx(estimate.evaluate_estimate(1, "fashion_mnist", [8, 6], ev)["evaluate"])
    assert est["cached"]["merge"] == {"done": 1, "total": 2, "unit": "trees"}

    est = estimate.job_estimate("evaluate", EvaluateSpec(model_ids=tuple(leaves), eval=EVAL).to_dict())
    assert est["evaluate"] == 0.0 and est["cached"]["evaluate"]["done"] == 4
    other = {**EVAL, "subset": 32}  # another config: nothing of it is stored
    est = estimate.job_estimate("evaluate", EvaluateSpec(model_ids=tuple(leaves), eval=other).to_dict())
    assert est["evaluate"] == pytest.approx(estimate.evaluate_estimate(4, "fashion_mnist", [8, 6],
                                                                       EvalConfig.from_dict(other))["evaluate"])
    assert "already stored" not in estimate.describe_range(est)


def test_a_store_that_cannot_answer_prices_the_whole_job(monkeypatch):
    plan = experiment.plan_for("tiny")
    run_experiment(ExperimentSpec(preset="tiny", dataset="fashion_mnist"), JobContext.null())

    def busy(*args, **kwargs):
        raise StoreBusy("the store stayed locked")

    monkeypatch.setattr("store.models.ids_by_key", busy)
    est = estimate.estimate_breakdown(plan, measure=False)
    assert _figures(est) == _figures(estimate.estimate_breakdown(plan, measure=False, cached=False))
    assert all(c["done"] == 0 for c in est["cached"].values())


def test_uncached_estimates_are_unchanged_and_the_lookup_needs_no_torch(lab_home):
    for name in experiment.PRESETS:
        plan = experiment.plan_for(name)
        assert _figures(estimate.estimate_breakdown(plan, measure=False)) == _figures(
            estimate.estimate_breakdown(plan, measure=False, cached=False)), name
    code = ("import sys, json; from backend.experiment import plan_for; from backend.stored_work import "
            "experiment_stored; s = experiment_stored(plan_for('paper')); "
            "print(json.dumps([s is not None, s.models, 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [True, 0, False]
