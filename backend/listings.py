"""The model and tree tables the pages list (Zoo, Merge, Tree view, Compare's pickers): one row per model or
tree with its zoo, settings, label and accuracy, and one tree's nodes with their metrics."""

from __future__ import annotations

import pandas as pd

from backend.labels import metric_label
from backend.leaves import widths_label
from backend.merge.registry import alignment_suffix
from store import evaluations as store_evals
from store import models as store_models
from store import reads as store_reads
from store import trees as store_trees
from store import zoos as store_zoos
from store.jsonutil import decoded


def int_ids(values) -> list[int] | None:
    """Ids as ints; None stays None (no filter)."""
    return None if values is None else [int(v) for v in values]


def zoo_frame() -> pd.DataFrame:
    """zoo_id, zoo_name, zoo_kind of every zoo, to join onto models."""
    zoos = store_zoos.list_zoos()
    if zoos.empty:
        return pd.DataFrame(columns=["zoo_id", "zoo_name", "zoo_kind"])
    return zoos.rename(columns={"id": "zoo_id", "name": "zoo_name", "kind": "zoo_kind"})[
        ["zoo_id", "zoo_name", "zoo_kind"]]


def _latest_accuracy(model_ids: list[int], eval_key: str | None) -> pd.DataFrame:
    """Accuracy per model under `eval_key` (or the most recent evaluation when no key is given)."""
    if not model_ids:
        return pd.DataFrame(columns=["model_id", "accuracy", "eval_key"])
    ev = store_reads.latest_metric("accuracy", model_ids=model_ids, eval_key=eval_key)
    return ev.rename(columns={"value": "accuracy"})[["model_id", "accuracy", "eval_key"]]


def models_table(*, zoo_ids=None, tree_ids=None, kind: str | None = None, dataset: str | None = None,
                 eval_key: str | None = None) -> pd.DataFrame:
    """One row per model: identity, zoo, architecture, training config summary and test accuracy."""
    models = store_models.list_models(kind=kind, dataset=dataset)
    columns = ["model_id", "kind", "dataset", "widths", "zoo_id", "zoo_name", "zoo_kind", "tree_id", "level",
               "seed", "accuracy", "train_acc", "epochs", "optimizer", "lr", "reg", "reg_strength",
               "eval_key", "seconds", "created_at"]
    if models.empty:
        return pd.DataFrame(columns=columns)
    models = models.rename(columns={"id": "model_id"})
    if zoo_ids is not None:
        models = models[models["zoo_id"].isin(int_ids(zoo_ids))]
    if tree_ids is not None:
        member_ids = set()
        for tid in int_ids(tree_ids):
            member_ids |= set(store_trees.tree_nodes(tid)["id"].astype(int))
        models = models[models["model_id"].isin(member_ids)]
    configs = models["config"].map(lambda c: decoded(c, {}))
    for field in ("epochs", "optimizer", "lr", "reg", "reg_strength"):
        models[field] = configs.map(lambda c, f=field: c.get(f))
    models["widths"] = models["widths"].map(widths_label)
    out = models.merge(zoo_frame(), on="zoo_id", how="left")
    out = out.merge(_latest_accuracy(out["model_id"].astype(int).tolist(), eval_key), on="model_id", how="left")
    return out.reindex(columns=columns).sort_values("model_id").reset_index(drop=True)


def pairing_text(pairing) -> str:
    """'as listed', 'random', or a custom pairing level by level: '(0,2)(1,3) | (0,1)'."""
    if pairing is None or isinstance(pairing, str):
        return {"as_listed": "as listed", None: "as listed"}.get(pairing, str(pairing))
    return " | ".join("".join("(" + ",".join(str(int(i)) for i in group) + ")" for group in level)
                      for level in pairing)


def tree_settings_text(config: dict) -> str:
    """' · λ 0.5 · pairing as listed' for the settings a tree's config records (nothing for the others)."""
    parts = []
    if config.get("lam") is not None:
        parts.append(f"λ {float(config['lam']):g}")
    if "pairing" in config:
        parts.append(f"pairing {pairing_text(config['pairing'])}")
    return "".join(f" · {p}" for p in parts)


INCOMPLETE = " · incomplete (no root yet)"  # label suffix of a tree whose merge has not finished


def trees_table() -> pd.DataFrame:
    """One row per tree: id, method, number of leaves, root model, experiment, `complete` and a short label.

    A tree is complete once its root is stored (the root is set last); an incomplete one (its merge job is
    still running, or was killed: rerunning the merge finishes it) says so in its label."""
    trees = store_trees.list_trees()
    columns = ["tree_id", "method", "n_leaves", "root_model_id", "experiment_id", "created_at", "complete", "label"]
    if trees.empty:
        return pd.DataFrame(columns=columns)
    out = trees.rename(columns={"id": "tree_id"})
    out["n_leaves"] = out["leaves"].map(lambda v: len(decoded(v, [])))
    suffix = out["config"].map(lambda c: alignment_suffix(decoded(c, {}))) if "config" in out.columns else ""
    settings = out["config"].map(lambda c: tree_settings_text(decoded(c, {}))) if "config" in out.columns else None
    out["complete"] = out["root_model_id"].notna()
    out["label"] = [f"#{int(t)} {m}{s} · {n} leaves{x}{'' if c else INCOMPLETE}" for t, m, s, n, x, c in zip(
        out["tree_id"], out["method"], suffix if isinstance(suffix, pd.Series) else [""] * len(out), out["n_leaves"],
        settings if settings is not None else [""] * len(out), out["complete"], strict=True)]
    return out.reindex(columns=columns).sort_values("tree_id", ascending=False).reset_index(drop=True)


def tree_node_table(tree_id: int, eval_key: str | None = None) -> pd.DataFrame:
    """The nodes of one tree with parents (model ids), `carried` (a node carried up unchanged at an odd-count
    level) and every scalar metric as a column (for Tree view)."""
    nodes = store_trees.tree_nodes(int(tree_id))
    if nodes.empty:
        return pd.DataFrame(columns=["model_id", "level", "kind", "carried", "parents"])
    nodes = nodes.rename(columns={"id": "model_id"})
    nodes["parents"] = nodes["parents"].map(lambda p: [int(x) for x in decoded(p, [])])
    nodes["widths"] = nodes["widths"].map(widths_label)
    nodes["carried"] = nodes["carried"].fillna(False).astype(bool) & ~nodes["is_leaf"].astype(bool)
    base = nodes[["model_id", "level", "kind", "carried", "node_index", "parents", "widths", "seed"]].copy()
    ev = store_evals.evaluations(model_ids=base["model_id"].astype(int).tolist(), eval_key=eval_key)
    if not ev.empty:
        ev = ev.assign(column=[metric_label(m, p) for m, p in zip(ev["metric"], ev["param"], strict=True)])
        wide = ev.pivot_table(index="model_id", columns="column", values="value", aggfunc="last").reset_index()
        base = base.merge(wide, on="model_id", how="left")
    return base.sort_values(["level", "model_id"]).reset_index(drop=True)
