"""Corrupt or missing weights are detected and repaired: a rerun recomputes what is damaged, `store verify`
lists and fixes, an evaluation skips a damaged model instead of failing the batch."""

from __future__ import annotations

import pytest

from backend.jobs import evaluate_step, merge_step, train_step
from backend.jobs.context import JobContext
from backend.jobs.spec import MergeSpec, TrainSpec
from store import evaluations as store_evals
from store import models as store_models
from store import trees as store_trees
from store.weights import load_weights, save_weights, verify_weights, weights_path
from tests.jobs.fakes import patch_tiny_data

TRAIN = {"dataset": "fashion_mnist", "widths": [8, 6], "epochs": 2, "batch_size": 32, "lr": 0.01}
EVAL = {"metrics": ["accuracy"], "batch_size": 64}


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    patch_tiny_data(monkeypatch)


def _flip(h: str) -> None:
    path = weights_path(h)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: the old size check let this pass
    path.write_bytes(bytes(data))


def _zoo(n=3):
    spec = TrainSpec(name="tiny", train=TRAIN, n_models=n)
    zoo_id = train_step.train_zoo(spec, JobContext.null())
    return spec, train_step.zoo_model_ids(zoo_id)


def test_save_weights_rewrites_a_damaged_file_of_the_same_size(make_tiny_params):
    params = make_tiny_params(0)
    h = save_weights(params)
    _flip(h)
    assert verify_weights(h) == "corrupt"
    assert save_weights(params) == h and verify_weights(h) is None


def test_rerunning_the_training_repairs_a_flipped_and_a_missing_file():
    spec, ids = _zoo()
    rows = [store_models.get_model(i) for i in ids]
    _flip(rows[0]["weights"])
    weights_path(rows[2]["weights"]).unlink()
    ctx = JobContext.null()
    train_step.train_zoo(spec, ctx)
    assert ctx.cache_hits == 1, "only the intact model is a cache hit"
    after = [store_models.get_model(i) for i in ids]
    assert len(store_models.list_models()) == 3
    for row in after:
        assert verify_weights(row["weights"]) is None
        load_weights(row["weights"])


def test_store_verify_lists_and_repairs(capsys):
    from backend.cli import main

    _, ids = _zoo(2)
    assert main(["store", "verify"]) == 0
    h = store_models.get_model(ids[1])["weights"]
    _flip(h)
    assert main(["store", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"model {ids[1]} (trained): weights corrupt" in out and "1 damaged" in out
    assert main(["store", "verify", "--repair"]) == 0
    assert main(["store", "verify"]) == 0
    load_weights(store_models.get_model(ids[1])["weights"])


def test_evaluation_skips_a_damaged_model_and_reports_it():
    _, ids = _zoo(3)
    _flip(store_models.get_model(ids[1])["weights"])
    ctx = JobContext.null()
    assert evaluate_step.evaluate_models(ids, EVAL, ctx) == 2
    assert ctx.damaged == [ids[1]]
    from backend.evaluate.config import EvalConfig

    key = EvalConfig.from_dict(EVAL).key()
    assert [store_evals.has_evaluation(i, key) for i in ids] == [True, False, True]


def test_a_complete_tree_with_a_damaged_node_is_rebuilt():
    _, ids = _zoo(4)
    spec = MergeSpec(model_ids=tuple(ids), methods=("hierarchical",))
    (tree_id,) = merge_step.build_merges(spec, JobContext.null())
    nodes = store_trees.tree_nodes(tree_id)
    merged = nodes[~nodes["is_leaf"]]
    victim = merged.iloc[0]
    weights_path(victim["weights"]).unlink()
    before = len(store_models.list_models())
    assert merge_step.build_merges(spec, JobContext.null()) == [tree_id]
    assert len(store_models.list_models()) == before
    load_weights(store_models.get_model(int(victim["id"]))["weights"])
