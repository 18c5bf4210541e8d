"""A small but real store for the page tests, built once per session and copied into each test's home.

Tiny MLPs (in_shape (1, 28, 28), widths (16, 8)) are merged with the real hierarchical merge, MergeMany and
naive averaging, stored through store/*, and evaluated by the real evaluation suite on 200 seeded random
samples; an L2 zoo gives the reference group, an odd model (other widths and dataset) lets the Merge
builder's validation fire, and a finished and a failed job give Runs something to show.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

AT_TIMEOUT = 120  # seconds per AppTest run: first runs import torch/altair and time the machine

TRAIN = {"dataset": "fashion_mnist", "widths": [16, 8], "epochs": 1, "batch_size": 512, "optimizer": "adam",
         "lr": 1e-3, "momentum": 0.9, "reg": "none", "reg_strength": 0.0, "augment": None, "train_subset": 500}


def _tiny(seed: int, widths=(16, 8)):
    from backend.models import MLP, MLPConfig, state_dict_of

    torch.manual_seed(seed)
    return state_dict_of(MLP(MLPConfig(in_shape=(1, 28, 28), widths=widths, mean=(0.286,), std=(0.353,))))


def _add_zoo(name: str, kind: str, seeds, train: dict) -> tuple[int, list[int], list[dict]]:
    from store import models, weights, zoos

    zoo_id = zoos.create_zoo(name, train["dataset"], kind, train, len(seeds), key=f"zoo-{name}")
    ids, params = [], []
    for seed in seeds:
        p = _tiny(seed, tuple(train["widths"]))
        ids.append(models.add_model(kind="trained", dataset=train["dataset"], widths=train["widths"], config=train,
                                    weights=weights.save_weights(p), key=f"model-{name}-{seed}", zoo_id=zoo_id,
                                    seed=seed, train_acc=0.1))
        params.append(p)
    return zoo_id, ids, params


def _add_node(tree_id, kind, params, level, node_index, parents, key) -> int:
    from store import models, weights

    return models.add_model(kind=kind, dataset="fashion_mnist", widths=[16, 8], config={"method": kind},
                            weights=weights.save_weights(params), key=key, tree_id=tree_id, level=level,
                            node_index=node_index, parents=parents)


def build_store() -> dict:
    """Populate the store at REBASIN_HOME; returns the ids the tests look for."""
    from backend.evaluate.config import EvalConfig
    from backend.evaluate.suite import evaluate_model
    from backend.merge.average import naive_average
    from backend.merge.merge_many import merge_many
    from backend.merge.tree import hierarchical_merge
    from store import evaluations, jobs, trees

    zoo_id, leaf_ids, leaves = _add_zoo("tiny-plain", "plain", [0, 1, 2, 3], TRAIN)
    l2_id, l2_ids, _ = _add_zoo("tiny-l2", "l2", [10, 11], {**TRAIN, "reg": "l2", "reg_strength": 1e-4})
    _, odd_ids, _ = _add_zoo("odd-mnist", "plain", [20], {**TRAIN, "dataset": "mnist", "widths": [12]})

    hier = trees.create_tree("hierarchical", leaf_ids, {"lam": 0.5, "pairing": "as_listed"}, key="tree-h")
    nodes = hierarchical_merge(leaves, lam=0.5, seed=0)
    ids = list(leaf_ids)
    for node in nodes[len(leaves):]:
        mid = _add_node(hier, "hierarchical", node.params, node.level, node.index,
                        [ids[p] for p in node.parents], key=f"h-node-{node.index}")
        ids.append(mid)
        trees.add_merge(hier, mid, "hierarchical", 0.5, node.match.sweeps if node.match else 0, [], node.seconds)
    trees.set_tree_root(hier, ids[-1])
    flat = {}
    for method, params in (("merge_many", merge_many(leaves, seed=0).params), ("average", naive_average(leaves))):
        tid = trees.create_tree(method, leaf_ids, {"seed": 0}, key=f"tree-{method}")
        mid = _add_node(tid, method, params, 2, len(leaves), leaf_ids, key=f"{method}-node")
        trees.set_tree_root(tid, mid)
        flat[method] = (tid, mid)

    config = EvalConfig(subset=200, fgsm_eps=(0.0, 0.01, 0.02), deepfool_linf_eps=(0.0, 0.01, 0.02),
                        deepfool_l2_eps=(0.0, 0.25, 0.5), noise_sigma=(0.0, 0.1, 0.2), deepfool_steps=10,
                        lipschitz_points=5, batch_size=200)
    evaluations.register_eval_config(config.key(), config.to_dict())
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, 28, 28, generator=gen)  # [N, C, H, W] in [0, 1]
    y = torch.randint(0, 10, (200,), generator=gen)  # [N]
    from store import models as store_models
    from store import weights
    evaluated = ids + [m for _, m in flat.values()] + l2_ids
    for mid in evaluated:
        params = weights.load_weights(store_models.get_model(mid)["weights"])
        rows = evaluate_model(params, x, y, config)
        evaluations.save_evaluations(mid, config.key(), [(r.metric, r.param, r.value) for r in rows])

    done = jobs.create_job("merge", {"kind": "merge", "model_ids": leaf_ids, "methods": ["hierarchical"]}, "job-done")
    jobs.finish_job(done, "done", result={"tree_ids": [hier, *(t for t, _ in flat.values())],
                                          "root_model_ids": [ids[-1]]})
    failed = jobs.create_job("train", {"kind": "train", "name": "broken", "n_models": 2, "train": TRAIN}, "job-failed")
    jobs.finish_job(failed, "failed", error="DatasetUnavailable: cifar10 is not on disk; pick fashion_mnist")
    return {"zoo_id": zoo_id, "l2_zoo_id": l2_id, "leaf_ids": leaf_ids, "odd_id": odd_ids[0], "hier_tree": hier,
            "root_id": ids[-1], "mm_tree": flat["merge_many"][0], "avg_tree": flat["average"][0],
            "eval_key": config.key(), "done_job": done, "failed_job": failed, "n_models": 4 + 2 + 1 + 3 + 2}


@pytest.fixture(scope="session")
def _built_store(tmp_path_factory):
    home = tmp_path_factory.mktemp("populated-home")
    old = os.environ.get("REBASIN_HOME")
    os.environ["REBASIN_HOME"] = str(home)
    try:
        info = build_store()
    finally:
        if old is None:
            os.environ.pop("REBASIN_HOME", None)
        else:
            os.environ["REBASIN_HOME"] = old
    return home, info


@pytest.fixture
def populated_store(_built_store, lab_home):
    """This test's REBASIN_HOME holds a copy of the session's small real store; returns its ids."""
    built, info = _built_store
    for item in Path(built).iterdir():
        if item.name.endswith(".lock"):
            continue
        target = Path(lab_home) / item.name
        lab_home.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, target)
    return info


@pytest.fixture
def no_workers(monkeypatch):
    """Record jobs without starting worker processes: the fake worker is this test process."""
    from types import SimpleNamespace

    from backend.jobs import queue

    spawned = []

    def fake_spawn(job_id):
        spawned.append(job_id)
        return SimpleNamespace(pid=os.getpid())

    monkeypatch.setattr(queue, "spawn_worker", fake_spawn)
    return spawned
