"""Steps against a real store with tiny synthetic data: train -> merge -> evaluate, caching, resuming."""

from __future__ import annotations

import math

import pytest

from backend.jobs import evaluate_step, merge_step, train_step
from backend.jobs.context import JobContext
from backend.jobs.spec import MergeSpec, TrainSpec
from backend.progress import Cancelled
from store import evaluations as store_evals
from store import jobs as store_jobs
from store import models as store_models
from store import status as store_status
from store import trees as store_trees
from store.db import connect
from store.jsonutil import decoded
from tests.jobs.fakes import patch_tiny_data

TRAIN = {"dataset": "fashion_mnist", "widths": [8, 6], "epochs": 3, "batch_size": 32, "lr": 0.01}
EVAL = {"metrics": ["accuracy", "fgsm", "weight_norm"], "fgsm_eps": [0.0, 0.01, 0.02], "batch_size": 64}


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    patch_tiny_data(monkeypatch)


def count_calls(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)

    def wrapped(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    return calls


def train_four(n=4, **train):
    spec = TrainSpec(name="tiny", train={**TRAIN, **train}, n_models=n)
    zoo_id = train_step.train_zoo(spec, JobContext.null())
    return spec, zoo_id, train_step.zoo_model_ids(zoo_id)


def test_train_merge_evaluate_stores_the_right_rows():
    from backend.train import seeds_for

    spec, zoo_id, leaves = train_four()
    trained = store_models.list_models(zoo_id=zoo_id)
    assert len(leaves) == 4 and list(trained["kind"]) == ["trained"] * 4
    assert list(trained.sort_values("node_index")["seed"]) == seeds_for(0, 4)
    assert set(trained["level"]) == {0}

    merge = MergeSpec(model_ids=tuple(leaves), methods=("hierarchical", "merge_many", "average"))
    hier, many, avg = merge_step.build_merges(merge, JobContext.null())

    nodes = store_trees.tree_nodes(hier)
    merged = nodes[~nodes["is_leaf"]].sort_values("node_index")
    assert list(merged["level"]) == [1, 1, 2] and list(merged["kind"]) == ["hierarchical"] * 3
    level1 = [int(i) for i in merged["id"][:2]]
    parents = [decoded(p) for p in merged["parents"]]
    assert parents == [leaves[0:2], leaves[2:4], level1]
    assert store_trees.get_tree(hier)["root_model_id"] == int(merged["id"].iloc[-1])
    merges = store_trees.list_merges(hier)
    assert len(merges) == 3 and (merges["sweeps"] >= 1).all() and (merges["lam"] == 0.5).all()

    for tree_id, kind in ((many, "merge_many"), (avg, "average")):
        node = store_models.list_models(tree_id=tree_id)
        assert len(node) == 1 and node["kind"].iloc[0] == kind
        assert node["level"].iloc[0] == 2  # ceil(log2(4)): next to hierarchical level 2
        assert decoded(node["parents"].iloc[0]) == leaves
        assert store_trees.get_tree(tree_id)["root_model_id"] == int(node["id"].iloc[0])
    assert len(store_trees.list_merges(many)) == 1

    ids = sorted({i for t in (hier, many, avg) for i in merge_step.tree_model_ids(t)})
    assert len(ids) == 4 + 3 + 1 + 1
    assert evaluate_step.evaluate_models(ids, EVAL, JobContext.null()) == len(ids)
    ev = store_evals.evaluations(model_ids=ids)
    assert set(ev["model_id"]) == set(ids)
    acc = ev[ev["metric"] == "accuracy"]
    assert len(acc) == len(ids) and acc["value"].between(0, 1).all()
    assert len(ev[ev["metric"] == "fgsm_acc"]) == 3 * len(ids)
    leaf_acc = acc[acc["model_id"].isin(leaves)]["value"]
    assert leaf_acc.mean() > 0.5  # the toy task is learnable: real training happened


def test_rerun_is_a_cache_hit(monkeypatch):
    import backend.evaluate.suite
    import backend.train

    _, zoo_id, leaves = train_four()
    merge = MergeSpec(model_ids=tuple(leaves), methods=("hierarchical", "merge_many", "average"))
    tree_ids = merge_step.build_merges(merge, JobContext.null())
    ids = sorted({i for t in tree_ids for i in merge_step.tree_model_ids(t)})
    evaluate_step.evaluate_models(ids, EVAL, JobContext.null())
    before = store_status.counts()
    merges_before = sum(len(store_trees.list_merges(t)) for t in tree_ids)

    train_calls = count_calls(monkeypatch, backend.train, "train_models")
    eval_calls = count_calls(monkeypatch, backend.evaluate.suite, "evaluate_model")
    assert train_four()[1] == zoo_id
    assert merge_step.build_merges(merge, JobContext.null()) == tree_ids
    assert evaluate_step.evaluate_models(ids, EVAL, JobContext.null()) == 0
    assert train_calls == [] and eval_calls == []
    assert store_status.counts() == before
    assert sum(len(store_trees.list_merges(t)) for t in tree_ids) == merges_before


def test_interrupted_train_resumes_only_the_missing_models(monkeypatch):
    import backend.train
    from backend.train import seeds_for

    monkeypatch.setattr(train_step, "train_chunk_size", lambda: 1)  # save granularity = one model (the CPU default)
    spec = TrainSpec(name="tiny", train=TRAIN, n_models=4)
    job = store_jobs.create_job("train", spec.to_dict(), spec.key())
    store_jobs.start_job(job, 1)
    add_model = store_models.add_model
    added = []

    def add_then_cancel(**kwargs):  # the user presses cancel right after the 2nd model is stored
        added.append(add_model(**kwargs))
        if len(added) == 2:
            store_jobs.request_cancel(job)
        return added[-1]

    monkeypatch.setattr(store_models, "add_model", add_then_cancel)
    with pytest.raises(Cancelled):
        train_step.train_zoo(spec, JobContext(job))
    assert len(store_models.list_models(kind="trained")) == 2
    monkeypatch.setattr(store_models, "add_model", add_model)

    calls = count_calls(monkeypatch, backend.train, "train_models")
    zoo_id = train_step.train_zoo(spec, JobContext.null())
    assert [args[1] for args, _ in calls] == [[s] for s in seeds_for(0, 4)[2:]]  # only the missing seeds
    assert len(train_step.zoo_model_ids(zoo_id)) == 4
    assert train_step.zoo_model_ids(zoo_id)[:2] == added


def test_odd_leaf_count_and_levels():
    _, _, leaves = train_four(n=3)
    hier, many = merge_step.build_merges(MergeSpec(model_ids=tuple(leaves), methods=("hierarchical", "merge_many")),
                                         JobContext.null())
    root = store_models.get_model(store_trees.get_tree(hier)["root_model_id"])
    assert root["level"] == math.ceil(math.log2(3)) == 2
    assert store_models.list_models(tree_id=many)["level"].iloc[0] == 2


def test_bad_merges_are_readable_value_errors():
    _, _, leaves = train_four(n=2)
    _, _, wide = train_four(n=1, widths=[8, 8])
    ctx = JobContext.null()
    with pytest.raises(ValueError, match="does not exist"):
        merge_step.build_merges(MergeSpec(model_ids=(leaves[0], 999)), ctx)
    with pytest.raises(ValueError, match="different widths"):
        merge_step.build_merges(MergeSpec(model_ids=(leaves[0], wide[0])), ctx)
    with pytest.raises(ValueError, match="does not exist"):
        train_step.zoo_model_ids(999)
    with pytest.raises(ValueError, match="does not exist"):
        evaluate_step.evaluate_models([999], EVAL, ctx)


def test_runner_dispatches_an_experiment_and_records_failures():
    from backend.jobs.runner import log_path, run_job
    from backend.jobs.spec import ExperimentSpec

    overrides = {"widths": [8, 6], "epochs": 1, "batch_size": 32, "train_subset": None, "trees": [[1, 4]],
                 "reg_models": 1, "eval": {"metrics": ["accuracy"], "subset": 32}}
    spec = ExperimentSpec(preset="quick", dataset="fashion_mnist", overrides=overrides)
    job = store_jobs.create_job(spec.kind, spec.to_dict(), spec.key())
    assert run_job(job) == "done"
    row = store_jobs.get_job(job)
    assert row["status"] == "done" and row["progress"] == 1.0
    assert len(row["result"]["tree_ids"]) == 3 and set(row["result"]["zoos"]) == {"plain", "l1", "l2"}

    too_big = ExperimentSpec(preset="quick", dataset="fashion_mnist", overrides={**overrides, "train_subset": 10**6})
    job = store_jobs.create_job(too_big.kind, too_big.to_dict(), too_big.key())
    assert run_job(job) == "failed"
    error = store_jobs.get_job(job)["error"]
    assert "train_subset" in error and "\n" not in error
    assert "Traceback" in log_path(job).read_text()
    with pytest.raises(ValueError, match="only a queued job"):
        run_job(job)


def test_stacked_evaluation_batches_match_one_at_a_time_and_resume_after_cancel(monkeypatch):
    _, _, leaves = train_four(n=5)
    eval_all = {**EVAL, "metrics": ["accuracy", "fgsm", "noise", "deepfool_linf", "weight_norm"],
                "noise_sigma": [0.0, 0.1], "deepfool_linf_eps": [0.0, 0.05]}
    evaluate_step.evaluate_models(leaves, eval_all, JobContext.null(), stack=1)
    from backend.evaluate.config import EvalConfig

    key = EvalConfig.from_dict(eval_all).key()
    alone = store_evals.evaluations(eval_key=key).sort_values(["model_id", "metric", "param"])
    for mid in leaves:  # forget them, then evaluate again in stacks of 2: a batch is cancelled after the first
        with connect() as con:
            con.execute("DELETE FROM evaluations WHERE model_id = ?", [mid])
    job = store_jobs.create_job("evaluate", {}, "k")
    store_jobs.start_job(job, 1)
    save = store_evals.save_evaluations
    saved = []

    def save_then_cancel(model_id, eval_key, rows):
        saved.append(model_id)
        if len(saved) == 2:  # the first batch of two is stored, then the user cancels
            store_jobs.request_cancel(job)
        return save(model_id, eval_key, rows)

    monkeypatch.setattr(store_evals, "save_evaluations", save_then_cancel)
    with pytest.raises(Cancelled):
        evaluate_step.evaluate_models(leaves, eval_all, JobContext(job), stack=2)
    assert saved == leaves[:2]
    assert evaluate_step.evaluate_models(leaves, eval_all, JobContext.null(), stack=2) == 3  # only the missing ones
    stacked = store_evals.evaluations(eval_key=key).sort_values(["model_id", "metric", "param"])
    assert list(stacked["metric"]) == list(alone["metric"])
    n = 1 / 64  # an accuracy may differ by one boundary sample of the tiny test split at most
    for (_, a), (_, b) in zip(alone.iterrows(), stacked.iterrows(), strict=True):
        assert abs(a["value"] - b["value"]) <= max(n, 1e-5 * abs(a["value"])) + 1e-9, (a["metric"], a["param"])
