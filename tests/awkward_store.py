"""An awkward store for per-level statistics: trees that share leaves, an odd (3-leaf) tree with a carried
node, a custom-pairing tree and a MergeMany over the same leaves; evaluations written by hand (seeded
random values) so the expected statistics can be computed independently from the raw rows.

`build_awkward_store()` uses the real job step (`merge_step.build_merges`) so the carried flag is set the way
production sets it; `expected_levels()` recomputes mean/std/n per (group, level) from `models`/`trees`
rows and the evaluation rows alone, without backend.levels or backend.tables.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

EVAL_KEY = "awkward-eval-0001"
OTHER_KEY = "awkward-eval-0002"  # a second config that only the first tree has: must never mix in
FGSM = (0.0, 0.01, 0.02)
TRAIN = {"dataset": "fashion_mnist", "widths": [8, 6], "epochs": 1, "batch_size": 32, "optimizer": "adam",
         "lr": 1e-3, "momentum": 0.9, "reg": "none", "reg_strength": 0.0, "augment": None, "train_subset": 64}


def _tiny(seed: int) -> dict:
    from backend.models import MLP, MLPConfig, state_dict_of

    torch.manual_seed(seed)
    return state_dict_of(MLP(MLPConfig(in_shape=(1, 4, 4), widths=(8, 6), mean=(0.5,), std=(0.25,))))


def build_awkward_store() -> dict:
    """Six leaves; trees: A = hierarchical [0,1,2,3], B = hierarchical [2,3,4,5] (shares 2 leaves with A),
    C = hierarchical [0,1,4] (3 leaves: one node carried up), D = hierarchical [0,1,2,3] with the custom
    pairing (0,2),(1,3), E = MergeMany [0,1,2,3]. Every model gets seeded accuracy and FGSM rows."""
    from backend.jobs import merge_step
    from backend.jobs.context import JobContext
    from backend.jobs.spec import MergeSpec
    from store import evaluations, models, weights, zoos

    zoo = zoos.create_zoo("awkward", "fashion_mnist", "plain", TRAIN, 6, key="zoo-awkward")
    leaves = [models.add_model(kind="trained", dataset="fashion_mnist", widths=[8, 6], config=TRAIN,
                               weights=weights.save_weights(_tiny(s)), key=f"awkward-leaf-{s}", zoo_id=zoo,
                               seed=s, node_index=s) for s in range(6)]
    ctx = JobContext.null()
    (a, e) = merge_step.build_merges(MergeSpec(model_ids=tuple(leaves[:4]),
                                               methods=("hierarchical", "merge_many")), ctx)
    (b,) = merge_step.build_merges(MergeSpec(model_ids=tuple(leaves[2:6])), ctx)
    (c,) = merge_step.build_merges(MergeSpec(model_ids=(leaves[0], leaves[1], leaves[4])), ctx)
    (d,) = merge_step.build_merges(MergeSpec(model_ids=tuple(leaves[:4]), pairing=[[(0, 2), (1, 3)], [(0, 1)]]),
                                   ctx)
    from backend.evaluate.config import EvalConfig

    evaluations.register_eval_config(EVAL_KEY, EvalConfig(subset=64, fgsm_eps=FGSM).to_dict())
    evaluations.register_eval_config(OTHER_KEY, EvalConfig(subset=32, metrics=("accuracy",)).to_dict())
    rng = np.random.default_rng(7)
    all_models = models.list_models()
    for mid in all_models["id"].astype(int):
        acc = float(rng.uniform(0.5, 0.9))
        rows = [("accuracy", None, acc), ("weight_norm", None, float(rng.uniform(5, 9)))]
        rows += [("fgsm_acc", eps, acc * (1 - 20 * eps) * float(rng.uniform(0.9, 1.0))) for eps in FGSM]
        evaluations.save_evaluations(int(mid), EVAL_KEY, rows)
    for mid in merge_step.tree_model_ids(a):
        evaluations.save_evaluations(int(mid), OTHER_KEY, [("accuracy", None, 0.0)])
    return {"leaves": leaves, "zoo": zoo, "trees": {"A": a, "B": b, "C": c, "D": d, "E": e}}


def add_reference_zoo(kind: str = "l2", n: int = 3) -> int:
    """A regularised reference zoo of `n` models outside every tree, evaluated like the rest; returns its id."""
    from store import evaluations, models, weights, zoos

    train = {**TRAIN, "reg": kind, "reg_strength": 1e-3} if kind in ("l1", "l2") else TRAIN
    zoo = zoos.create_zoo(f"awkward-{kind}", "fashion_mnist", kind, train, n, key=f"zoo-awkward-{kind}")
    rng = np.random.default_rng(11)
    for s in range(n):
        mid = models.add_model(kind="trained", dataset="fashion_mnist", widths=[8, 6], config=train,
                               weights=weights.save_weights(_tiny(100 + s)), key=f"awkward-{kind}-{s}", zoo_id=zoo,
                               seed=s, node_index=s)
        acc = float(rng.uniform(0.5, 0.9))
        rows = [("accuracy", None, acc), ("weight_norm", None, float(rng.uniform(3, 5)))]
        rows += [("fgsm_acc", eps, acc * (1 - 10 * eps)) for eps in FGSM]
        evaluations.save_evaluations(int(mid), EVAL_KEY, rows)
    return zoo


def expected_zoo(zoo_id: int, group: str, eval_key: str = EVAL_KEY) -> pd.DataFrame:
    """mean, std, n per (metric, param) of a reference zoo's models, from the raw rows, as `group` level 0."""
    from store import evaluations, models

    ids = sorted(models.list_models()[lambda d: d["zoo_id"] == zoo_id]["id"].astype(int))
    ev = evaluations.evaluations(model_ids=ids, eval_key=eval_key)
    out = [{"group": group, "level": 0, "metric": metric, "param": param, "mean": float(np.mean(part["value"])),
            "std": float(np.std(part["value"], ddof=1)), "n": len(part)}
           for (metric, param), part in ev.groupby(["metric", "param"], dropna=False)]
    return pd.DataFrame(out)


def expected_levels(tree_ids, eval_key: str = EVAL_KEY) -> pd.DataFrame:
    """mean, std (ddof 1), n per (group, level, metric, param) straight from the store's rows.

    Groups: "unmerged leaves" = the union of the trees' leaf lists (each model once); every merged node
    under its tree's method at its level, except nodes with a single parent (carried up, not merges).
    """
    from store import evaluations, models, trees

    members = set()
    rows = []
    for tid in tree_ids:
        tree = trees.get_tree(int(tid))
        leaf_ids = tree["leaves"] if isinstance(tree["leaves"], list) else json.loads(tree["leaves"])
        for mid in leaf_ids:
            if ("unmerged leaves", 0, int(mid)) not in members:
                members.add(("unmerged leaves", 0, int(mid)))
                rows.append(("unmerged leaves", 0, int(mid)))
        nodes = models.list_models(tree_id=int(tid))
        for node in nodes.itertuples():
            if len(json.loads(node.parents)) < 2:
                continue
            rows.append((tree["method"], int(node.level), int(node.id)))
    member_df = pd.DataFrame(rows, columns=["group", "level", "model_id"])
    ev = evaluations.evaluations(model_ids=sorted(set(member_df["model_id"])), eval_key=eval_key)
    joined = member_df.merge(ev, on="model_id")
    out = []
    for (group, level, metric, param), part in joined.groupby(["group", "level", "metric", "param"], dropna=False):
        values = part["value"].to_numpy(dtype=float)
        out.append({"group": group, "level": int(level), "metric": metric, "param": param,
                    "mean": float(np.mean(values)),
                    "std": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"), "n": len(values)})
    return pd.DataFrame(out).sort_values(["group", "level", "metric", "param"]).reset_index(drop=True)


def assert_matches(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same (group, level, metric, param) rows with the same mean, std and n."""
    cols = ["group", "level", "metric", "param"]
    got = got.assign(level=got["level"].astype(int), param=got["param"].astype(float))
    want = want.assign(param=want["param"].astype(float))
    merged = want.merge(got, on=cols, how="outer", suffixes=("_want", "_got"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"][cols + ["_merge"]]
    assert (merged["n_want"] == merged["n_got"]).all(), merged[merged["n_want"] != merged["n_got"]]
    np.testing.assert_allclose(merged["mean_got"], merged["mean_want"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(merged["std_got"].astype(float), merged["std_want"].astype(float), rtol=0,
                               atol=1e-12, equal_nan=True)


def record_experiment(info: dict, l2_zoo: int) -> int:
    """Tree A (hierarchical) and E (MergeMany over A's leaves) with the plain and an L2 zoo recorded as one
    finished experiment, as run_experiment records it (nothing trained), so the Report page has sections."""
    from backend.experiment import PRESETS
    from store import evaluations, experiments

    t = info["trees"]
    trees = {"hierarchical": t["A"], "merge_many": t["E"]}
    result = {"plan": PRESETS["demo"].to_dict(), "eval_key": EVAL_KEY, "eval": evaluations.get_eval_config(EVAL_KEY),
              "zoos": {"plain": info["zoo"], "l2": l2_zoo},
              "groups": [{"pair": 0, "leaves": 4, "leaf_ids": info["leaves"][:4], "trees": trees}],
              "tree_ids": list(trees.values())}
    exp = experiments.create_experiment("awkward", "demo", "fashion_mnist", {"preset": "demo"}, key="awkward-exp")
    experiments.update_experiment(exp, status="done", result={"experiment_id": exp, **result})
    return exp
