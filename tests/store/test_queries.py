"""Zoos, models, trees, merges, evaluations, experiments, status: CRUD and key-based cache hits."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from store import db
from store.evaluations import (
    evaluated_model_ids,
    evaluations,
    get_eval_config,
    has_evaluation,
    list_eval_configs,
    register_eval_config,
    save_evaluations,
)
from store.experiments import (
    create_experiment,
    find_experiment,
    get_experiment,
    list_experiments,
    update_experiment,
)
from store.jsonutil import decode_column
from store.models import add_model, find_model, get_model, list_models
from store.status import counts
from store.trees import add_merge, create_tree, get_tree, list_merges, list_trees, set_tree_root, tree_nodes
from store.weights import save_weights
from store.zoos import create_zoo, find_zoo, get_zoo, list_zoos


@pytest.fixture
def weights(make_tiny_params):
    return save_weights(make_tiny_params(0))


def _model(weights, key, **kw):
    args = dict(kind="trained", dataset="fashion_mnist", widths=(8, 6), config={"lr": 1e-3}, weights=weights,
                key=key)
    args.update(kw)
    return add_model(**args)


def test_zoo_create_get_list_and_cache_hit():
    zid = create_zoo("z", "cifar10", "l2", {"reg": "l2", "widths": [8, 6]}, 4, "zk")
    assert create_zoo("other name", "cifar10", "l2", {}, 9, "zk") == zid  # same key -> same zoo
    assert find_zoo("zk") == zid and find_zoo("nope") is None
    zoo = get_zoo(zid)
    assert zoo["config"] == {"reg": "l2", "widths": [8, 6]} and zoo["n_models"] == 4
    assert zoo["models_stored"] == 0 and zoo["created_at"] <= db.utc_now()
    assert get_zoo(zid + 100) is None
    df = list_zoos()
    assert df["id"].tolist() == [zid] and df["models_stored"].tolist() == [0]
    with pytest.raises(ValueError, match="Zoo kind"):
        create_zoo("z", "cifar10", "l3", {}, 1, "k2")
    with pytest.raises(ValueError, match="JSON"):
        create_zoo("z", "cifar10", "plain", {"x": object()}, 1, "k3")


def test_model_add_get_list_and_cache_hit(weights):
    zid = create_zoo("z", "fashion_mnist", "plain", {}, 2, "zk")
    a = _model(weights, "a", zoo_id=zid, seed=1, seconds=1.5, train_loss=0.3, train_acc=0.9)
    b = _model(weights, "b", zoo_id=zid, seed=2)
    assert _model(weights, "a", seed=99) == a
    assert find_model("b") == b and find_model("c") is None
    row = get_model(a)
    assert row["widths"] == [8, 6] and row["config"] == {"lr": 1e-3} and row["parents"] == []
    assert (row["zoo_id"], row["seed"], row["level"], row["weights"]) == (zid, 1, 0, weights)
    assert get_model(9999) is None
    assert get_zoo(zid)["models_stored"] == 2
    df = list_models(zoo_id=zid)
    assert df["id"].tolist() == [a, b]
    assert decode_column(df, "widths").tolist() == [[8, 6], [8, 6]]
    assert list_models(ids=[b])["id"].tolist() == [b]
    assert list_models(ids=[]).empty
    assert list_models(kind="average").empty and len(list_models(dataset="fashion_mnist")) == 2


def test_model_validation(weights):
    with pytest.raises(ValueError, match="save_weights"):
        _model("0" * 64, "k")
    with pytest.raises(ValueError, match="64 lowercase hex"):
        _model("xyz", "k")
    with pytest.raises(ValueError, match="Model kind"):
        _model(weights, "k", kind="ensemble")
    with pytest.raises(ValueError, match="train_acc"):
        _model(weights, "k", train_acc=float("nan"))
    with pytest.raises(ValueError, match="cache key"):
        _model(weights, "")
    assert list_models().empty


def test_tree_nodes_merges_and_root(weights):
    leaves = [_model(weights, f"leaf{i}", seed=i) for i in range(4)]
    tid = create_tree("hierarchical", [leaves[2], leaves[0], leaves[1], leaves[3]], {"lam": 0.5}, "tk")
    assert create_tree("hierarchical", leaves, {}, "tk") == tid
    with pytest.raises(ValueError, match="stored model"):
        create_tree("hierarchical", [leaves[0], 999], {}, "tk2")
    l1a = _model(weights, "n4", kind="hierarchical", tree_id=tid, level=1, node_index=4, parents=[leaves[2], leaves[0]])
    l1b = _model(weights, "n5", kind="hierarchical", tree_id=tid, level=1, node_index=5, parents=[leaves[1], leaves[3]])
    root = _model(weights, "n6", kind="hierarchical", tree_id=tid, level=2, node_index=6, parents=[l1a, l1b])
    for node in (l1a, l1b, root):
        add_merge(tid, node, "hierarchical", 0.5, 3, [1.0, 2.5, 2.5], 0.01)
    set_tree_root(tid, root)
    tree = get_tree(tid)
    assert tree["leaves"] == [leaves[2], leaves[0], leaves[1], leaves[3]] and tree["root_model_id"] == root
    assert get_model(root)["parents"] == [l1a, l1b]
    nodes = tree_nodes(tid)
    assert nodes["id"].tolist() == [leaves[2], leaves[0], leaves[1], leaves[3], l1a, l1b, root]
    assert nodes["node_index"].tolist() == list(range(7))
    assert nodes["level"].tolist() == [0, 0, 0, 0, 1, 1, 2]
    assert nodes["is_leaf"].tolist() == [True] * 4 + [False] * 3
    assert set(nodes["tree_id"]) == {tid}
    assert tree_nodes(tid + 1).empty
    assert list_models(tree_id=tid)["id"].tolist() == [l1a, l1b, root]
    trees = list_trees()
    assert trees[["n_leaves", "n_merged"]].values.tolist() == [[4, 3]]
    merges = list_merges(tid)
    assert decode_column(merges, "objective").tolist() == [[1.0, 2.5, 2.5]] * 3
    with pytest.raises(ValueError, match="no tree"):
        set_tree_root(tid + 5, root)


def test_trees_by_experiment(weights):
    m = _model(weights, "m")
    eid = create_experiment("e", "quick", "fashion_mnist", {"preset": "quick"}, "ek")
    t1 = create_tree("merge_many", [m], {}, "t1", experiment_id=eid)
    create_tree("average", [m], {}, "t2")
    assert list_trees(experiment_id=eid)["id"].tolist() == [t1]
    assert len(list_trees()) == 2


def test_evaluations_save_replace_and_query(weights):
    a, b = _model(weights, "a"), _model(weights, "b")
    register_eval_config("ek", {"subset": 100})
    register_eval_config("ek", {"subset": 999})  # first registration wins
    assert get_eval_config("ek") == {"subset": 100} and get_eval_config("zz") is None
    assert not has_evaluation(a, "ek")
    rows = [("accuracy", None, 0.9), ("fgsm_acc", 0.0, 0.9), ("fgsm_acc", 0.01, 0.5), ("loss", None, math.nan)]
    assert save_evaluations(a, "ek", rows) == 4
    save_evaluations(b, "ek", [("accuracy", None, 0.8)])
    save_evaluations(a, "other", [("accuracy", None, 0.1)])
    assert has_evaluation(a, "ek") and not has_evaluation(b, "other")
    df = evaluations(model_ids=[a], eval_key="ek")
    assert list(df.columns) == ["model_id", "eval_key", "metric", "param", "value"]
    assert df["metric"].tolist() == ["accuracy", "fgsm_acc", "fgsm_acc", "loss"]
    assert pd.isna(df["param"][0]) and df["param"][2] == 0.01 and math.isnan(df["value"][3])
    save_evaluations(a, "ek", [("accuracy", None, 0.95)])  # replaces, never appends
    assert evaluations(model_ids=[a], eval_key="ek")["value"].tolist() == [0.95]
    assert len(evaluations()) == 3 and len(evaluations(eval_key="ek")) == 2
    assert evaluated_model_ids("ek") == {a, b} and evaluated_model_ids("ek", [b, 77]) == {b}
    assert list_eval_configs()[["key", "n_models"]].values.tolist() == [["ek", 2]]
    with pytest.raises(ValueError, match="no model"):
        save_evaluations(12345, "ek", [("accuracy", None, 1.0)])


def test_save_evaluations_is_atomic(weights):
    a = _model(weights, "a")
    save_evaluations(a, "ek", [("accuracy", None, 0.7), ("loss", None, 1.2)])

    def rows_failing_midway():
        yield ("accuracy", None, 0.1)  # consumed after the DELETE, inside the transaction
        yield ("loss", None, "not a number")

    with pytest.raises(ValueError, match="value of loss"):
        save_evaluations(a, "ek", rows_failing_midway())
    df = evaluations(model_ids=[a])
    assert df[["metric", "value"]].values.tolist() == [["accuracy", 0.7], ["loss", 1.2]]
    for bad in ([("", None, 1.0)], [("m", "x", 1.0)], [("m", None)], [("m", None, True)]):
        with pytest.raises(ValueError):
            save_evaluations(a, "ek", bad)
    assert len(evaluations(model_ids=[a])) == 2


def test_experiments_crud():
    eid = create_experiment("first", "quick", "fashion_mnist", {"preset": "quick", "n": 4}, "ek")
    assert create_experiment("again", "quick", "fashion_mnist", {}, "ek") == eid
    assert find_experiment("ek") == eid
    exp = get_experiment(eid)
    assert exp["spec"] == {"n": 4, "preset": "quick"} and exp["status"] == "created" and exp["result"] is None
    update_experiment(eid, status="done", job_id=3, report_path="/tmp/r.md", result={"trees": [1, 2]})
    exp = get_experiment(eid)
    assert (exp["status"], exp["job_id"], exp["report_path"], exp["result"]) == ("done", 3, "/tmp/r.md",
                                                                                 {"trees": [1, 2]})
    assert list_experiments()["id"].tolist() == [eid]
    with pytest.raises(ValueError, match="spec"):
        update_experiment(eid, spec={})
    with pytest.raises(ValueError, match="no experiment"):
        update_experiment(eid + 1, status="x")
    assert get_experiment(eid + 1) is None


def test_counts(weights):
    assert counts() == dict(zoos=0, models=0, trees=0, evaluations=0, evaluated_models=0, running_jobs=0,
                            queued_jobs=0, experiments=0)
    create_zoo("z", "cifar10", "plain", {}, 1, "z")
    a = _model(weights, "a")
    create_tree("average", [a], {}, "t")
    save_evaluations(a, "ek", [("accuracy", None, 0.5), ("loss", None, 1.0)])
    c = counts()
    assert (c["zoos"], c["models"], c["trees"], c["evaluations"], c["evaluated_models"]) == (1, 1, 1, 2, 1)
