"""Compare: every metric per merge level, methods against each other, zoos as references; the numbers."""

from __future__ import annotations

import streamlit as st

from app.ui import charts, reads
from app.ui.widgets import COMPARE_TREES, COMPARE_ZOOS, download_buttons
from backend.queries import (
    CURVE_METRICS,
    METRIC_TITLES,
    comparison_display,
    comparison_table,
    eval_key_summary,
)

st.title("Compare")
st.caption("Level 0 = the unmerged leaves; each level up is one round of pairwise merging. Dashed lines are "
           "reference zoos (L1/L2-regularised or plain unmerged models). Only one evaluation config is "
           "shown at a time, so every point was measured the same way.")

trees = reads.trees()
zoos = reads.zoos()
if trees.empty and zoos.empty:
    st.info("Nothing to compare yet: start the demo preset on Home (about three minutes), or train a zoo and "
            "build a merge.")
    st.page_link("pages/home.py", label="Go to Home", icon=":material/home:")
    st.stop()


def _ids_param(name: str) -> list[int]:
    raw = st.query_params.get(name, "")
    return [int(p) for p in raw.split(",") if p.strip().isdigit()]


tree_labels = dict(zip(trees["tree_id"].astype(int), trees["label"], strict=True))
zoo_labels = {int(r.id): f"#{int(r.id)} {r.name} ({r.kind})" for r in zoos.itertuples()}
default_trees = _ids_param("trees") or st.session_state.get(COMPARE_TREES) or list(tree_labels)[:30]
default_zoos = _ids_param("zoos") or st.session_state.get(COMPARE_ZOOS) or [
    z for z in zoo_labels if zoos.set_index("id").loc[z, "kind"] in ("l1", "l2")]

c1, c2 = st.columns(2)
tree_ids = c1.multiselect("Trees (merge results)", list(tree_labels), default=[t for t in default_trees
                                                                             if t in tree_labels],
                          format_func=tree_labels.get, key="cmp_trees")
zoo_ids = c2.multiselect("Reference zoos", list(zoo_labels), default=[z for z in default_zoos if z in zoo_labels],
                         format_func=zoo_labels.get, key="cmp_zoos")
st.session_state[COMPARE_TREES], st.session_state[COMPARE_ZOOS] = tree_ids, zoo_ids

df = reads.level_metrics(tuple(tree_ids), tuple(zoo_ids))
if df.empty:
    st.warning("The chosen trees and zoos have no evaluations yet. Evaluations run as part of a merge job "
               "(tick 'Evaluate every node' in the Merge builder) or an experiment; check Runs for progress.")
    st.stop()

keys = eval_key_summary(df)
wanted = st.query_params.get("eval")
key_list = keys["eval_key"].tolist()
if len(key_list) > 1:
    index = key_list.index(wanted) if wanted in key_list else 0
    eval_key = st.selectbox("Evaluation config (results of different configs are never mixed)", key_list,
                            index=index, key="cmp_eval",
                            format_func=lambda k: f"{k} · {int(keys.set_index('eval_key').loc[k, 'n_models'])} models")
else:
    eval_key = key_list[0]
    st.caption(f"Evaluation config `{eval_key}` · {int(keys.loc[0, 'n_models'])} models")
df = df[df["eval_key"] == eval_key]

FAMILIES = {
    "accuracy": ["accuracy"], "loss": ["loss"], "FGSM curve": ["fgsm_acc"],
    "DeepFool L∞ curve": ["deepfool_linf_acc"], "DeepFool L2 curve": ["deepfool_l2_acc"],
    "Gaussian noise curve": ["noise_acc"], "DeepFool median perturbation": ["deepfool_linf_median", "deepfool_l2_median"],
    "weight norm": ["weight_norm"], "Lipschitz (global & local)": ["lipschitz_global", "lipschitz_local_mean"],
}
present = set(df["metric"].unique())
available = [name for name, metrics in FAMILIES.items() if present & set(metrics)]
default_families = [f for f in available if f not in ("loss", "DeepFool median perturbation")]
o1, o2 = st.columns([4, 1], vertical_alignment="bottom")
families = o1.multiselect("Metrics", available, default=default_families, key="cmp_metrics")
log = o2.toggle("Log-scale y", value=False, key="cmp_log")

chosen = [m for f in families for m in FAMILIES[f] if m in present]
cols = st.columns(2)
for i, metric in enumerate(chosen):
    if metric in CURVE_METRICS:
        chart = charts.curve_chart(df, metric, log=log)
    else:
        chart = charts.level_chart(df, metric, log=log)
    cols[i % 2].altair_chart(chart, width="stretch")

if (df["method"] != "zoo").any():
    st.subheader("Merge methods over the same leaves")
    scalar = [m for m in ("accuracy", "weight_norm", "lipschitz_global", "lipschitz_local_mean", "loss")
              if m in present]
    if scalar:
        m = st.selectbox("Metric", scalar, format_func=lambda k: METRIC_TITLES.get(k, k), key="cmp_method_metric")
        st.altair_chart(charts.method_chart(df, m, log=log), width="stretch")

st.subheader("Comparison table (level × metric: mean ± std)")
table = comparison_table(df, metrics=chosen or None)
st.dataframe(comparison_display(table), hide_index=True, width="stretch")
st.caption("Downloads hold the long table: one row per group × level × metric × parameter with mean, std "
           "(sample, ddof = 1) and n.")
download_buttons(table, f"comparison-{eval_key}", key="cmp-dl")
