"""Read side for interpolation curves: stored curve rows joined with the tree nodes they explain.

Pure reads (no torch). A merged tree node with two parents is "explained" by the curve between those
parents: its barrier says how far apart the two models' basins were when they were merged.
"""

from __future__ import annotations

import pandas as pd

from backend.connectivity_config import ALIGN_LABELS  # noqa: F401 - the labels, declared with the alignments
from store import curves as store_curves
from store import trees as store_trees
from store.jsonutil import decoded

NODE_COLUMNS = ["tree_id", "node_id", "level", "model_a", "model_b"]
BARRIER_COLUMNS = ["model_a", "model_b", "curve_key", "align", "repair", "split", "loss_barrier",
                   "accuracy_barrier", "midpoint_accuracy", "midpoint_loss"]


def variant_label(align: str, repair: bool) -> str:
    return ALIGN_LABELS.get(align, align) + (" + REPAIR" if repair else "")


def tree_parent_nodes(tree_ids) -> pd.DataFrame:
    """One row per merged node with exactly two parents: (tree_id, node_id, level, model_a, model_b)."""
    rows = []
    for tree_id in tree_ids:
        nodes = store_trees.tree_nodes(int(tree_id))
        for node in nodes.sort_values(["level", "id"]).itertuples(index=False):
            parents = decoded(node.parents, [])
            if len(parents) == 2:
                rows.append((int(tree_id), int(node.id), int(node.level), int(parents[0]), int(parents[1])))
    return pd.DataFrame(rows, columns=NODE_COLUMNS)


def tree_curves(tree_ids, curve_key: str | None = None) -> pd.DataFrame:
    """Curve rows of every merged node's parent pair, tagged with tree_id, node_id and level."""
    nodes = tree_parent_nodes(tree_ids)
    if nodes.empty:
        return pd.DataFrame(columns=[*NODE_COLUMNS, *store_curves.COLUMNS[2:]])
    rows = store_curves.curves(pairs=list(zip(nodes["model_a"], nodes["model_b"], strict=True)), curve_key=curve_key)
    return nodes.merge(rows, on=["model_a", "model_b"], how="inner")


def curve_keys(rows: pd.DataFrame) -> pd.DataFrame:
    """(curve_key, n_pairs) of some curve rows, most pairs first (a page picks one config at a time)."""
    if rows.empty:
        return pd.DataFrame(columns=["curve_key", "n_pairs"])
    pairs = rows.drop_duplicates(["curve_key", "model_a", "model_b"])
    return (pairs.groupby("curve_key").size().rename("n_pairs").reset_index()
            .sort_values(["n_pairs", "curve_key"], ascending=[False, True], ignore_index=True))


def barrier_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (pair, config, variant, split): both barriers and the λ = 0.5 point when on the grid."""
    if rows.empty:
        return pd.DataFrame(columns=BARRIER_COLUMNS)
    index = ["model_a", "model_b", "curve_key", "align", "repair", "split"]
    extra = [c for c in ("tree_id", "node_id", "level") if c in rows.columns]
    barriers = rows[rows["lam"].isna()].pivot_table(index=index + extra, columns="metric", values="value")
    mid = rows[rows["lam"] == 0.5].pivot_table(index=index + extra, columns="metric", values="value")
    mid = mid.rename(columns={"accuracy": "midpoint_accuracy", "loss": "midpoint_loss"})
    table = barriers.join(mid, how="left").reset_index()
    for col in BARRIER_COLUMNS:
        if col not in table.columns:
            table[col] = float("nan")
    return table[extra + BARRIER_COLUMNS]


def node_barrier_columns(tree_id: int, curve_key: str | None = None) -> pd.DataFrame:
    """Per merged node (model_id): one column per test-split barrier of its parents, e.g.
    'loss barrier · weight matching'; pick one curve config (the one with most pairs) when none is given."""
    rows = tree_curves([tree_id], curve_key)
    if curve_key is None and not rows.empty:
        rows = rows[rows["curve_key"] == curve_keys(rows)["curve_key"].iloc[0]]
    table = barrier_table(rows[rows["split"] == "test"]) if not rows.empty else pd.DataFrame()
    if table.empty:
        return pd.DataFrame(columns=["model_id"])
    out = pd.DataFrame({"model_id": sorted(set(table["node_id"].astype(int)))}).set_index("model_id")
    for (align, repair), part in table.groupby(["align", "repair"], sort=False):
        part = part.set_index(part["node_id"].astype(int))
        for metric in ("loss_barrier", "accuracy_barrier"):
            out[f"{metric.replace('_', ' ')} · {variant_label(align, bool(repair))}"] = part[metric]
    return out.reset_index()


def barrier_level_frames(tree_ids, curve_key: str | None = None, split: str = "test"
                         ) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """(summary, points, curve key) of the parents' barriers of every merged node in the trees, shaped like
    levels.level_summary / level_points so the Compare charts draw them per level: group = the tree's label
    (method + REPAIR / matcher suffix) · alignment, metric = loss_barrier | accuracy_barrier, one point per node.
    The curve config with the most pairs is used unless curve_key is given."""
    from backend.merge.registry import alignment_suffix

    rows = tree_curves(tree_ids, curve_key)
    rows = rows[rows["split"] == split]
    if rows.empty:
        return pd.DataFrame(), pd.DataFrame(), None
    key = curve_key or curve_keys(rows)["curve_key"].iloc[0]
    table = barrier_table(rows[rows["curve_key"] == key])
    trees = store_trees.list_trees()
    method = dict(zip(trees["id"].astype(int), trees["method"], strict=True))
    suffix = {int(t): alignment_suffix(decoded(c, {})) for t, c in zip(trees["id"], trees["config"], strict=True)}
    tree_group = table["tree_id"].map(lambda t: method[int(t)] + suffix[int(t)])
    table = table.assign(
        group=[f"{g} · {variant_label(a, bool(r))}" for g, a, r in zip(tree_group, table["align"], table["repair"],
                                                                       strict=True)],
        method=tree_group)
    points = table.melt(id_vars=["node_id", "tree_id", "method", "level", "group"],
                        value_vars=["loss_barrier", "accuracy_barrier"], var_name="metric", value_name="value")
    points = points.rename(columns={"node_id": "model_id"}).assign(param=float("nan"))
    summary = (points.groupby(["group", "method", "level", "metric"], sort=True)["value"]
               .agg(mean="mean", std="std", n="count").reset_index().assign(param=float("nan")))
    return summary, points, key
