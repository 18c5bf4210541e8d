"""Report sections that explain the merge: barrier per level, and the effect of REPAIR / the matcher per level.

Filled from an experiment whose plan has `variants` (extra hierarchical trees over the same leaves, e.g. with
REPAIR or activation matching) and/or `connectivity` (curves of every merged node's parents). Every number
comes from the stored rows; the sentences are generated from those numbers, never written in advance.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from backend import stats

EFFECT_METRICS = ("accuracy", "weight_norm", "lipschitz_global", "lipschitz_local_mean")
BASE = "hierarchical"


def variant_name(options: dict) -> str:
    """'hierarchical + REPAIR', 'hierarchical · activation matching', … from a variant's merge options."""
    parts = []
    if options.get("matcher", "weight") != "weight":
        parts.append(f"{options['matcher']} matching")
    label = BASE + (" · " + ", ".join(parts) if parts else "")
    return label + (" + REPAIR" if options.get("repair") else "")


def _tree_labels(result: dict) -> dict[int, tuple[int, str]]:
    """tree_id -> (group index, tree label) for the base hierarchical trees and every variant tree."""
    out = {}
    for group in result.get("groups", []):
        if BASE in group["trees"]:
            out[int(group["trees"][BASE])] = (int(group["pair"]), BASE)
        for variant in group.get("variants", []):
            out[int(variant["tree_id"])] = (int(group["pair"]), variant_name(variant["options"]))
    return out


def barrier_rows(result: dict) -> pd.DataFrame:
    """Barrier rows (test split) of every merged node's parents in the experiment's hierarchical trees."""
    from backend.curve_queries import barrier_table, tree_curves, variant_label

    labels = _tree_labels(result)
    if not result.get("curve_key") or not labels:
        return pd.DataFrame()
    rows = tree_curves(list(labels), result["curve_key"])
    rows = rows[rows["split"] == "test"]
    if rows.empty:
        return pd.DataFrame()
    table = barrier_table(rows)
    table["tree"] = table["tree_id"].map(lambda t: labels[int(t)][1])
    table["alignment"] = [variant_label(a, bool(r)) for a, r in zip(table["align"], table["repair"], strict=True)]
    return table


def _barrier_section(study) -> object:
    from backend.report import Section, _line_with_ci

    table = barrier_rows(study.result)
    if table.empty:
        return Section("Barrier per level", "No interpolation curves were stored for this experiment.")
    long = table.melt(id_vars=["tree", "alignment", "level", "node_id"],
                      value_vars=["loss_barrier", "accuracy_barrier"], var_name="metric", value_name="value")
    summary = stats.summarize(long, ["metric", "tree", "alignment", "level"])
    base = summary[(summary["tree"] == BASE) & (summary["metric"] == "loss_barrier")]
    chart = _line_with_ci(base, "level", "level of the merged node", "loss barrier of its parents", "alignment",
                          "Loss barrier between the two parents of each hierarchical node", "O")
    lines = []
    for alignment, part in base.groupby("alignment", sort=False):
        part = part.sort_values("level")
        values = ", ".join(f"level {int(r.level)}: {r.mean:.3f} (n = {int(r.n)})" for r in part.itertuples())
        lines.append(f"- {alignment}: {values}")
    text = ("Loss barrier max_λ [L(θ(λ)) − ((1−λ)·L(A) + λ·L(B))] and accuracy barrier between the two parents "
            "of every merged node, on the test split (mean with bootstrap 95 % CI). Level k: the parents merged "
            "at level k, each itself a level-(k−1) node. Mean loss barrier of the plain hierarchical trees:\n\n"
            + "\n".join(lines))
    return Section("Barrier per level", text, chart, {"barrier_per_level": summary, "barriers_per_node": table})


def effect_rows(study) -> pd.DataFrame:
    """Evaluation rows of the base and variant trees' merged nodes, paired by (group, node index)."""
    from backend.levels import level_metrics
    from store import models as store_models

    labels = _tree_labels(study.result)
    if len(set(label for _, label in labels.values())) < 2:
        return pd.DataFrame()
    df = level_metrics(tree_ids=list(labels), eval_key=study.result["eval_key"])
    df = df[df["kind"] != "trained"]
    if df.empty:
        return df
    nodes = store_models.list_models(ids=sorted(set(df["model_id"].astype(int))))
    node_index = dict(zip(nodes["id"].astype(int), nodes["node_index"].astype(int), strict=True))
    df = df.assign(tree=df["tree_id"].map(lambda t: labels[int(t)][1]),
                   pair=[f"{labels[int(t)][0]}-{node_index[int(m)]}" for t, m in zip(df["tree_id"], df["model_id"],
                                                                                      strict=True)])
    return df[df["param"].isna() | df["metric"].isin(["lipschitz_local_mean"])]


def _effect_section(study) -> object:
    from backend.report import Section

    df = effect_rows(study)
    if df.empty:
        return Section("REPAIR and matcher effect per level", "No variant trees were built for this experiment.")
    metrics = [(m, None) for m in EFFECT_METRICS if m in set(df["metric"])]
    tables, lines = [], []
    for variant in sorted(set(df["tree"]) - {BASE}):
        part = df[df["tree"].isin([variant, BASE])]
        part = part.drop(columns=["param", "method"]).assign(param=None).rename(columns={"tree": "method"})
        paired = stats.paired_table(part, metrics, by=("level",), a=variant, b=BASE)
        paired.insert(0, "variant", variant)
        tables.append(paired)
        acc = paired[paired["metric"] == "accuracy"].sort_values("level")
        for r in acc.itertuples():
            lines.append(f"- {variant}, level {int(r.level)}: accuracy {r.mean_a:.4f} vs {r.mean_b:.4f} "
                         f"(difference {r.mean_diff:+.4f}, 95 % CI [{r.ci_lo:+.4f}, {r.ci_hi:+.4f}], n = {int(r.n)}"
                         + (f", paired t-test p = {r.t_p:.3g}" if r.t_p == r.t_p else "") + ")")
    table = pd.concat(tables, ignore_index=True)
    text = ("Each variant tree merges the same leaves with the same pairing as the plain hierarchical tree, so "
            "node k of one is paired with node k of the other. mean_diff = variant − plain hierarchical with "
            "bootstrap CI; paired t-test for n ≥ 2, Wilcoxon signed-rank for n ≥ 5 (NaN where n does not allow "
            "a test). Accuracy:\n\n" + "\n".join(lines))
    return Section("REPAIR and matcher effect per level", text, None, {"variant_effects": table})


def builders(study) -> dict[str, Callable]:
    """The sections this experiment's result can fill."""
    out: dict[str, Callable] = {}
    if study.result.get("curve_key"):
        out["Barrier per level"] = _barrier_section
    if study.result.get("variant_tree_ids"):
        out["REPAIR and matcher effect per level"] = _effect_section
    return out
