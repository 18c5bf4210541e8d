"""Issue 10 item 9: a method's or metric's version enters its cache key, so a bump recomputes only what it
affects (and version 1 keeps the keys stored before versions existed)."""

from __future__ import annotations

import dataclasses

import pytest

from backend import metrics
from backend.jobs import evaluate_step, merge_step, train_step
from backend.jobs.context import JobContext
from backend.jobs.spec import MergeSpec, TrainSpec, model_key
from backend.merge import registry
from store import models as store_models
from tests.jobs.fakes import patch_tiny_data

TRAIN = {"dataset": "fashion_mnist", "widths": [8, 6], "epochs": 1, "batch_size": 32, "lr": 0.01}


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    patch_tiny_data(monkeypatch)


def _bump(monkeypatch, module, table: str, name: str):
    entries = getattr(module, table)
    monkeypatch.setitem(entries, name, dataclasses.replace(entries[name], version=entries[name].version + 1))


def _calls(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(a) or original(*a, **k))
    return calls


def test_bumping_one_merge_method_rebuilds_only_its_trees(monkeypatch):
    from importlib import import_module

    zoo_id = train_step.train_zoo(TrainSpec(name="v", train=TRAIN, n_models=4), JobContext.null())
    leaves = train_step.zoo_model_ids(zoo_id)
    spec = MergeSpec(model_ids=tuple(leaves), methods=("hierarchical", "merge_many", "average"))
    first = merge_step.build_merges(spec, JobContext.null())

    _bump(monkeypatch, registry, "MERGE_METHODS", "merge_many")
    calls = {m: _calls(monkeypatch, mod, fn) for m, mod, fn in (
        ("hierarchical", import_module("backend.merge.tree"), "hierarchical_merge"),
        ("merge_many", import_module("backend.merge.merge_many"), "merge_many_nodes"),
        ("average", import_module("backend.merge.average"), "average_nodes"))}
    again = merge_step.build_merges(spec, JobContext.null())
    assert again[0] == first[0] and again[2] == first[2]  # untouched methods: the same stored trees
    assert again[1] != first[1]  # the bumped method: a new tree, built now
    assert [len(calls[m]) for m in ("hierarchical", "merge_many", "average")] == [0, 1, 0]
    assert len(store_models.list_models(tree_id=again[1])) == 1


def test_bumping_one_metric_recomputes_only_configs_that_ask_for_it(monkeypatch):
    import backend.evaluate.fgsm
    import backend.evaluate.noise

    zoo_id = train_step.train_zoo(TrainSpec(name="v", train=TRAIN, n_models=2), JobContext.null())
    ids = train_step.zoo_model_ids(zoo_id)
    with_fgsm = {"metrics": ["accuracy", "fgsm"], "fgsm_eps": [0.0, 0.01], "batch_size": 64}
    without = {"metrics": ["accuracy", "noise"], "noise_sigma": [0.0, 0.1], "batch_size": 64}
    assert evaluate_step.evaluate_models(ids, with_fgsm, JobContext.null()) == 2
    assert evaluate_step.evaluate_models(ids, without, JobContext.null()) == 2

    _bump(monkeypatch, metrics, "METRICS", "fgsm")
    fgsm_calls = _calls(monkeypatch, backend.evaluate.fgsm, "fgsm_rows")
    noise_calls = _calls(monkeypatch, backend.evaluate.noise, "noise_rows")
    assert evaluate_step.evaluate_models(ids, without, JobContext.null()) == 0  # no fgsm in it: still cached
    assert evaluate_step.evaluate_models(ids, with_fgsm, JobContext.null()) == 2  # renamed by the bump: recomputed
    assert noise_calls == [] and len(fgsm_calls) >= 1


def test_bumping_training_renames_zoos_and_models(monkeypatch):
    import backend.train_config

    spec = TrainSpec(name="v", train=TRAIN, n_models=2)
    before = (spec.zoo_key(), model_key(spec.zoo_key(), spec.train_config().key(), 1))
    monkeypatch.setattr(backend.train_config, "TRAIN_VERSION", backend.train_config.TRAIN_VERSION + 1)
    assert spec.zoo_key() != before[0]
    assert model_key(spec.zoo_key(), spec.train_config().key(), 1) != before[1]
