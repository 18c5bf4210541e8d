"""Compare: every metric per merge level, methods against each other, zoos as references; the numbers.

Charts draw DuckDB aggregates (mean/std/n per group × level × param), never raw rows, and the tabs are
lazy: only the open tab's charts are built, so the page renders in well under a second on a big store.
"""

from __future__ import annotations

import streamlit as st

from app.ui import reads
from app.ui.frame import empty_state
from app.ui.widgets import COMPARE_TREES, COMPARE_ZOOS, chart_with_downloads, download_buttons
from backend import charts
from backend.levels import SETTINGS
from backend.metrics import SCALAR_ROWS, family_rows, title
from backend.tables import comparison_display, paper_table

st.title("Compare")
st.caption("Level 0 = the unmerged leaves; each level up is one round of pairwise merging. Dashed lines are "
           "reference zoos (L1/L2-regularised or plain unmerged models). Only one evaluation config is "
           "shown at a time, so every point was measured the same way.")

trees = reads.trees()
zoos = reads.zoos()
if trees.empty and zoos.empty:
    empty_state("Nothing to compare yet: start the demo preset on Home (its time estimate is shown there), or train a "
                "zoo and build a merge.", "home")


def _ids_param(name: str) -> list[int]:
    raw = st.query_params.get(name, "")
    return [int(p) for p in raw.split(",") if p.strip().isdigit()]


unfinished = trees[~trees["complete"].astype(bool)] if not trees.empty else trees
if not unfinished.empty:  # a tree without its root is still being built (or its job was killed): not a result yet
    st.caption(f"{len(unfinished)} incomplete tree(s) not offered here (#"
               + ", #".join(str(int(t)) for t in unfinished["tree_id"])
               + "): their merge is still running or was interrupted; rerunning the same merge finishes them.")
    trees = trees[trees["complete"].astype(bool)]
tree_labels = dict(zip(trees["tree_id"].astype(int), trees["label"], strict=True))
zoo_labels = {int(r.id): f"#{int(r.id)} {r.name} ({r.kind})" for r in zoos.itertuples()}
zoo_kinds = dict(zip(zoos["id"].astype(int), zoos["kind"], strict=True))
default_trees = _ids_param("trees") or st.session_state.get(COMPARE_TREES) or list(tree_labels)[:30]
default_zoos = _ids_param("zoos") or st.session_state.get(COMPARE_ZOOS) or [
    z for z, kind in zoo_kinds.items() if kind in ("l1", "l2")]

c1, c2 = st.columns(2)
tree_ids = c1.multiselect("Trees (merge results)", list(tree_labels),
                          default=[t for t in default_trees if t in tree_labels],
                          format_func=tree_labels.get, key="cmp_trees")
zoo_ids = c2.multiselect("Reference zoos", list(zoo_labels), default=[z for z in default_zoos if z in zoo_labels],
                         format_func=zoo_labels.get, key="cmp_zoos")
st.session_state[COMPARE_TREES], st.session_state[COMPARE_ZOOS] = tree_ids, zoo_ids

keys = reads.eval_keys(tree_ids, zoo_ids)
if keys.empty:
    st.warning("The chosen trees and zoos have no evaluations yet. Evaluations run as part of a merge job "
               "(tick 'Evaluate every node' in the Merge builder) or an experiment; check Runs for progress.")
    st.stop()

wanted = st.query_params.get("eval")
key_list = keys["eval_key"].tolist()
labels = reads.selection_eval_labels(tree_ids, zoo_ids)
if wanted and wanted not in key_list:
    st.warning(f"The link asked for evaluation config `{wanted}`, but none of the selected trees or zoos has "
               "results in it; showing the config with the most models instead.")
if st.session_state.get("cmp_eval") not in key_list:
    st.session_state["cmp_eval"] = wanted if wanted in key_list else key_list[0]
o1, o2, o3, o4 = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
eval_key = o1.selectbox("Evaluation config (results of different configs are never mixed)", key_list,
                        key="cmp_eval", format_func=lambda k: labels.get(k, k),
                        help="Test subset, attack grids and settings, how many of the selected models have "
                             "results in it, and when it was first run.")
for flag in ("log", "zero", "models"):  # a shared link restores the chart options once
    if f"cmp_{flag}" not in st.session_state:
        st.session_state[f"cmp_{flag}"] = st.query_params.get(flag) == "1"
log = o2.toggle("Log-scale y", key="cmp_log")
zero = o3.toggle("Include 0", key="cmp_zero", help="Start every y-axis at zero.")
models = o4.toggle("Each model", key="cmp_models",
                   help="Draw every tree model's own robustness curve as a thin line behind its series' mean "
                        "(per-level charts always show each model as a dot).")
split_default = [v for v in st.query_params.get("split", "").split(",") if v in SETTINGS]
split = st.multiselect("Split and colour series by", [k for k in SETTINGS if k != "method"],
                       default=split_default, format_func=SETTINGS.get, key="cmp_split",
                       help="Any recorded setting: tree size, λ, pairing, merge seed (merged models only), zoo, "
                            "dataset, widths, regularisation. Series are always split by method.")
st.query_params.update({"trees": ",".join(map(str, tree_ids)), "zoos": ",".join(map(str, zoo_ids)),
                        "eval": eval_key, "split": ",".join(split)})


def _switch_config(key: str) -> None:
    st.session_state["cmp_eval"] = key


coverage = reads.coverage(tree_ids, zoo_ids)
sources = [f"tree {t}" for t in tree_ids] + [f"zoo {z}" for z in zoo_ids]
for source in sources:
    rows = coverage[coverage["source"] == source]
    counts = dict(zip(rows["eval_key"], rows["n_models"].astype(int), strict=True))
    here, best = counts.get(eval_key, 0), max(counts.values(), default=0)
    if here and here >= best:
        continue
    name = f"Tree #{source.split()[1]}" if source.startswith("tree") else f"Zoo #{source.split()[1]}"
    if not counts:
        st.warning(f"{name} has no evaluation results yet, so it is missing from every chart; evaluate it "
                   "(Merge builder or `python -m backend evaluate`) or wait for its job on Runs.")
        continue
    other = max(counts, key=lambda k: (counts[k], k != eval_key))
    what = ("has no results in this evaluation config, so it is missing from every chart" if not here else
            f"has results for only {here} of its models in this evaluation config")
    w1, w2 = st.columns([5, 1], vertical_alignment="center")
    w1.warning(f"{name} {what}. It has results for {best} models in: {labels.get(other, other)}.")
    w2.button("Show that config", key=f"cmp-switch-{source}", on_click=_switch_config, args=(other,))

summary = reads.summary(tree_ids, zoo_ids, eval_key, split)
present = set(summary["metric"])
SCALARS = SCALAR_ROWS  # per-level scalars (catalogue order); every other row is a curve over its grid


def _points(metrics=SCALARS):
    return reads.points(tree_ids, eval_key, tuple(metrics), split)


def _grid(metrics: list[str], tab_name: str = "") -> None:
    """Charts of `metrics` (those present), two per row; a chart whose legend needs more than half the page
    (long split labels) gets a row of its own, so no legend is cut off."""
    shown = [m for m in metrics if m in present]
    if not shown:
        st.info("No results for these metrics in this evaluation config.")
        return
    cols, half = None, 0
    for metric in shown:
        if metric in SCALARS:
            points = _points()
        else:  # a curve reads per-model values only to draw each model's own line
            points = _points([metric]) if models and tree_ids else None
        chart = charts.metric_chart(summary, points, metric, log=log, zero=zero, models=models)
        if charts.wants_full_row(chart):
            where = st.container()
        else:
            if half % 2 == 0:
                cols = st.columns(2)
            where, half = cols[half % 2], half + 1
        chart_with_downloads(where, chart, f"{metric}-{eval_key}", key=f"fig-{tab_name}-{metric}")


TABS = ["Overview", "Adversarial", "Noise", "Weights & Lipschitz", "Merge methods", "Barriers", "Table"]
if "cmp_tab" not in st.session_state and st.query_params.get("tab") in TABS:
    st.session_state["cmp_tab"] = st.query_params["tab"]
tabs = dict(zip(TABS, st.tabs(TABS, key="cmp_tab", on_change="rerun"), strict=True))
st.query_params.update({"tab": st.session_state.get("cmp_tab") or TABS[0], "log": "1" if log else "0",
                        "zero": "1" if zero else "0", "models": "1" if models else "0"})
with tabs["Overview"]:
    if tabs["Overview"].open:
        _grid(["accuracy", "fgsm_acc", "weight_norm", "lipschitz_global"], "Overview")
with tabs["Adversarial"]:
    if tabs["Adversarial"].open:
        for norm in ("linf", "l2"):
            if f"certified_{norm}_acc" in present:
                chart_with_downloads(st, charts.bracket_chart(summary, norm), f"bracket-{norm}-{eval_key}",
                                     key=f"fig-Adversarial-bracket-{norm}")
        _grid([*family_rows("adversarial", curves=True), "loss",
               *[m for m in family_rows("adversarial", curves=False) if m != "loss"]], "Adversarial")
with tabs["Noise"]:
    if tabs["Noise"].open:
        _grid([*family_rows("noise"), "accuracy"], "Noise")
with tabs["Weights & Lipschitz"]:
    if tabs["Weights & Lipschitz"].open:
        _grid(family_rows("weights"), "Weights & Lipschitz")
with tabs["Merge methods"]:
    if tabs["Merge methods"].open:
        scalar = [m for m in SCALARS if m in present]
        if not tree_ids or not scalar:
            st.info("Pick at least one tree with evaluated nodes to compare merge methods.")
        else:
            if st.session_state.get("cmp_method_metric") not in scalar:  # a shared link's metric, once
                wanted_metric = st.query_params.get("metric")
                st.session_state["cmp_method_metric"] = wanted_metric if wanted_metric in scalar else scalar[0]
            m = st.selectbox("Metric", scalar, format_func=title,
                             key="cmp_method_metric")
            st.query_params["metric"] = m
            chart_with_downloads(st, charts.method_chart(_points(), m, log=log, zero=zero), f"methods-{m}-{eval_key}",
                                 key="fig-methods")
with tabs["Barriers"]:
    if tabs["Barriers"].open:
        b_summary, b_points, curve_key = reads.barrier_levels(tree_ids)
        if b_summary.empty:
            st.info("No interpolation curves for the parents of these trees' nodes yet: compute them on the "
                    "Connectivity page (every node of a tree) or with `python -m backend interpolate --tree N`.")
            st.page_link("views/connectivity.py", label="Go to Connectivity", icon=":material/timeline:")
        else:
            st.caption(f"Barrier between the two parents of each merged node, by the node's level (curve config "
                       f"`{curve_key}`, test split): does the barrier grow as merged models merge again?")
            cols = st.columns(2)
            for col, metric in zip(cols, ("loss_barrier", "accuracy_barrier"), strict=True):
                chart_with_downloads(col, charts.level_chart(b_summary, b_points, metric), f"{metric}-{curve_key}",
                                     key=f"fig-barriers-{metric}")
with tabs["Table"]:
    if tabs["Table"].open:
        table = summary
        st.subheader("Level × metric: mean ± std")
        st.dataframe(comparison_display(table), hide_index=True, width="stretch")
        st.caption("The table for a paper: one row per group × level, one column per metric with its unit, "
                   "cells 'mean ± std (n)' (std: sample, ddof = 1; n: distinct models). LaTeX uses booktabs.")
        download_buttons(paper_table(table), f"comparison-wide-{eval_key}", key="cmp-wide")
        with st.expander("Raw data: the long table"):
            st.caption("One row per group × level × metric × parameter with mean, std and n, for analysis.")
            download_buttons(table, f"comparison-{eval_key}", key="cmp-dl")
