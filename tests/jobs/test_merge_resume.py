"""A merge worker SIGKILLed at known write points: every stored node keeps its merge row (no half rows), the
tree is marked incomplete, and a rerun builds only what is missing (hierarchical: the nodes not stored;
MergeMany: the rounds after its last checkpoint), ending where an uninterrupted run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from backend.jobs import merge_step, train_step
from backend.jobs.context import JobContext
from backend.jobs.queue import reap
from backend.jobs.spec import MergeSpec, TrainSpec, tree_key
from backend.listings import trees_table
from backend.merge.merge_many import merge_many
from backend.merge.tree import hierarchical_merge
from store import jobs as store_jobs
from store import models as store_models
from store import trees as store_trees
from store import weights as store_weights
from store.checkpoints import checkpoint_path
from tests.jobs.fakes import patch_tiny_data

ROOT = Path(__file__).resolve().parents[2]
KILLER = ROOT / "tests" / "jobs" / "kill_proc.py"
TRAIN = {"dataset": "fashion_mnist", "widths": [16, 12], "epochs": 1, "batch_size": 64, "lr": 0.01}


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    patch_tiny_data(monkeypatch)


def _leaves(n: int) -> list[int]:
    zoo_id = train_step.train_zoo(TrainSpec(name="tiny", train=TRAIN, n_models=n), JobContext.null())
    return train_step.zoo_model_ids(zoo_id)


def _kill_worker_at(spec: MergeSpec, point: str, n: int) -> int:
    """Record the job and run a real worker for it that SIGKILLs itself at the n-th `point`."""
    job_id = store_jobs.create_job(spec.kind, spec.to_dict(), spec.key())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, str(KILLER), str(job_id), point, str(n)], cwd=ROOT, env=env,
                          capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stdout.decode()[-2000:] + proc.stderr.decode()[-2000:]
    assert store_jobs.get_job(job_id)["status"] == "running"  # killed without a word ...
    assert reap(dispatch=False) == [job_id]  # ... until the next listing notices
    return job_id


def _tree(spec: MergeSpec, method: str) -> int:
    tree_id = store_trees.find_tree(tree_key(spec, method))
    assert tree_id is not None
    return tree_id


def _no_half_rows(tree_id: int) -> tuple[int, int]:
    """Every stored node has an intact file, and every node merged from parents has exactly one merge row."""
    nodes = store_models.list_models(tree_id=tree_id)
    merges = store_trees.list_merges(tree_id)
    assert not merges["model_id"].duplicated().any()
    merged = nodes[~nodes["carried"].fillna(False).astype(bool)]
    assert sorted(merged["id"]) == sorted(merges["model_id"])
    for h in nodes["weights"]:
        assert store_weights.verify_weights(h) is None
    return len(nodes), len(merges)


def _incomplete(tree_id: int) -> bool:
    row = trees_table().set_index("tree_id").loc[tree_id]
    return (not bool(row["complete"])) and "incomplete" in row["label"]


def _params(model_id: int) -> dict:
    return store_weights.load_weights(store_models.get_model(model_id)["weights"])


def test_a_hierarchical_merge_killed_after_a_node_resumes_from_the_last_stored_node(monkeypatch):
    leaves = _leaves(8)  # 8 -> 4 -> 2 -> 1: 7 merges
    spec = MergeSpec(model_ids=tuple(leaves), methods=("hierarchical",))
    _kill_worker_at(spec, "node", 3)
    tree_id = _tree(spec, "hierarchical")
    assert _no_half_rows(tree_id) == (3, 3)
    assert store_trees.get_tree(tree_id)["root_model_id"] is None and _incomplete(tree_id)

    calls = []
    original = merge_step._store_node
    monkeypatch.setattr(merge_step, "_store_node", lambda *a, **k: calls.append(k["node_index"]) or original(*a, **k))
    assert merge_step.build_merges(spec, JobContext.null()) == [tree_id]
    assert calls == [11, 12, 13, 14]  # nodes 8..10 were stored before the kill; only the rest is built
    assert _no_half_rows(tree_id) == (7, 7)
    root = store_trees.get_tree(tree_id)["root_model_id"]
    assert root is not None and not _incomplete(tree_id)
    reference = hierarchical_merge([_params(m) for m in leaves])[-1].params
    for key, value in _params(root).items():
        torch.testing.assert_close(value, reference[key])


def test_a_kill_between_a_node_row_and_its_merge_row_leaves_neither():
    leaves = _leaves(4)
    spec = MergeSpec(model_ids=tuple(leaves), methods=("hierarchical",), lam=0.4)
    _kill_worker_at(spec, "merge_row", 2)
    tree_id = _tree(spec, "hierarchical")
    assert _no_half_rows(tree_id) == (1, 1)  # node 2's model row went with its transaction
    merge_step.build_merges(spec, JobContext.null())
    assert _no_half_rows(tree_id) == (3, 3)
    assert (store_trees.list_merges(tree_id)["lam"] == 0.4).all()  # every node keeps its λ and trace


def test_merge_many_killed_after_a_round_resumes_from_its_checkpoint(monkeypatch):
    leaves = _leaves(5)
    spec = MergeSpec(model_ids=tuple(leaves), methods=("merge_many",), seed=2)
    params = [_params(m) for m in leaves]
    full = merge_many(params, seed=2, device="cpu")
    assert full.rounds >= 3  # so a kill after round 2 leaves rounds to do
    _kill_worker_at(spec, "round", 2)
    tree_id = _tree(spec, "merge_many")
    key = tree_key(spec, "merge_many")
    assert checkpoint_path(key).is_file() and _incomplete(tree_id)
    assert _no_half_rows(tree_id) == (0, 0)

    rounds = []
    original = merge_step._save_round_state
    monkeypatch.setattr(merge_step, "_save_round_state", lambda k, s: rounds.append(s.rounds) or original(k, s))
    merge_step.build_merges(spec, JobContext.null())
    assert rounds == list(range(3, full.rounds))  # rounds 1 and 2 were not run again
    assert _no_half_rows(tree_id) == (1, 1)
    assert not checkpoint_path(key).exists()  # a finished tree keeps no checkpoint
    root = store_trees.get_tree(tree_id)["root_model_id"]
    assert int(store_trees.list_merges(tree_id)["sweeps"].iloc[0]) == full.rounds
    for name, value in _params(root).items():
        torch.testing.assert_close(value, full.params[name])


def test_a_node_an_older_run_left_without_its_merge_row_gets_it_back():
    """Before nodes were stored atomically, a kill could leave a node row without its merge row (its λ, sweeps
    and trace lost): a rerun rebuilds that node and adds only the missing merge row."""
    from store.db import connect

    leaves = _leaves(4)
    spec = MergeSpec(model_ids=tuple(leaves), methods=("hierarchical",), lam=0.3)
    (tree_id,) = merge_step.build_merges(spec, JobContext.null())
    merges = store_trees.list_merges(tree_id)
    lost = int(merges["model_id"].iloc[1])
    with connect() as con:
        con.execute("DELETE FROM merges WHERE model_id = ?", [lost])
        con.execute("UPDATE trees SET root_model_id = NULL WHERE id = ?", [tree_id])
    assert _incomplete(tree_id)
    merge_step.build_merges(spec, JobContext.null())
    assert _no_half_rows(tree_id) == (3, 3)
    again = store_trees.list_merges(tree_id).set_index("model_id")
    assert again.loc[lost, "lam"] == 0.3 and again.loc[lost, "sweeps"] >= 1
    assert not _incomplete(tree_id)


@pytest.mark.parametrize("method", ["merge_many", "average"])
def test_a_one_step_merge_killed_after_its_root_is_stored_builds_nothing_again(monkeypatch, method):
    """Killed after the root's rows were committed but before the tree was marked complete: the rerun finds the
    root, marks the tree complete and computes nothing (no MergeMany round, no average, no new node row)."""
    import importlib

    average = importlib.import_module("backend.merge.average")
    mm = importlib.import_module("backend.merge.merge_many")  # the package exports a function of that name

    leaves = _leaves(3)
    spec = MergeSpec(model_ids=tuple(leaves), methods=(method,), seed=1)
    _kill_worker_at(spec, "node", 1)
    tree_id = _tree(spec, method)
    assert _no_half_rows(tree_id) == (1, 1) and _incomplete(tree_id)
    (stored_root,) = store_models.list_models(tree_id=tree_id)["id"]

    def never(*args, **kwargs):
        raise AssertionError("the stored root was computed again")

    monkeypatch.setattr(mm, "merge_many", never)
    monkeypatch.setattr(average, "naive_average", never)
    monkeypatch.setattr(merge_step, "_store_node", never)
    recorded = []
    monkeypatch.setattr("store.rates.record_rate", lambda *a, **k: recorded.append(a))
    assert merge_step.build_merges(spec, JobContext.null()) == [tree_id]
    assert recorded == []  # a resumed tree's few seconds say nothing of this machine's merge rate
    assert store_trees.get_tree(tree_id)["root_model_id"] == stored_root and not _incomplete(tree_id)
    assert _no_half_rows(tree_id) == (1, 1)
