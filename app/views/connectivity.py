"""Connectivity: interpolation curves and barriers between two models or a tree node's two parents."""

from __future__ import annotations

import streamlit as st

from app.ui import reads
from app.ui.frame import empty_state
from app.ui.text import md
from app.ui.widgets import (
    TREE_ID,
    download_buttons,
    estimate_caption,
    field_input,
    field_value,
    start_job,
)
from backend.charts import interpolation_chart
from backend.connectivity import ConnectivityConfig
from backend.curve_queries import barrier_table, curve_keys, variant_label
from backend.jobs.spec import InterpolateSpec
from backend.options import user_fields

st.title("Connectivity")
st.caption("Accuracy and loss of θ(λ) = (1−λ)·θ_A + λ·π(θ_B) along the straight path between two models, for "
           "π = no alignment (naive), weight matching or activation matching, optionally followed by REPAIR. "
           "Barrier = the largest gap between the curve and the straight line joining its endpoints "
           "(loss: above it, accuracy: below it); near 0 means the two models share a basin.")

models = reads.models_table()
if len(models) < 2:
    empty_state("Connectivity needs at least two stored models. Train a zoo on the Zoo page first.", "zoo")

trees = reads.trees()
hierarchical = trees[(trees["method"] == "hierarchical") & trees["complete"].astype(bool)] if not trees.empty \
    else trees  # an incomplete tree (merge running or interrupted) is not offered
modes = ["Tree node", "Two models"] if not hierarchical.empty else ["Two models"]
mode = st.radio("Pick", modes, horizontal=True, key="cn_mode")

tree_id = None
if mode == "Tree node":
    labels = dict(zip(hierarchical["tree_id"].astype(int), hierarchical["label"], strict=True))
    ids = list(labels)
    remembered = st.session_state.get(TREE_ID)
    tree_id = st.selectbox("Tree", ids, index=ids.index(remembered) if remembered in labels else 0,
                           format_func=labels.get, key="cn_tree")
    nodes = reads.tree_node_table(int(tree_id))
    merged = nodes[nodes["parents"].map(len) == 2]
    node_ids = merged["model_id"].astype(int).tolist()
    by_id = merged.set_index("model_id")
    node = st.selectbox("Node (its two parents are the endpoints)", node_ids, index=len(node_ids) - 1,
                        format_func=lambda m: f"#{m} · level {int(by_id.loc[m, 'level'])} · parents "
                                              f"#{by_id.loc[m, 'parents'][0]} and #{by_id.loc[m, 'parents'][1]}",
                        key="cn_node")
    model_a, model_b = (int(p) for p in by_id.loc[node, "parents"])
else:
    ids = models["model_id"].astype(int).tolist()
    info = models.set_index("model_id")

    def label(m: int) -> str:
        row = info.loc[m]
        return f"#{m} · {row['kind']} · {row['dataset']} · {row['widths']} · level {int(row['level'])}"

    c1, c2 = st.columns(2)
    model_a = c1.selectbox("Model A (λ = 0)", ids, index=0, format_func=label, key="cn_a")
    model_b = c2.selectbox("Model B (λ = 1, aligned onto A)", ids, index=min(1, len(ids) - 1), format_func=label,
                           key="cn_b")

problem = None
if model_a == model_b:
    problem = "Pick two different models."
else:
    ends = models.set_index("model_id").loc[[model_a, model_b]]
    if ends["dataset"].nunique() > 1 or ends["widths"].nunique() > 1:
        problem = "These two models differ in dataset or widths; a path between them needs one architecture."
if problem:
    st.warning(problem)

rows = reads.pair_curves([(model_a, model_b)])
if rows.empty:
    st.info(f"No curves between #{model_a} and #{model_b} yet: compute them below.")
else:
    keys = curve_keys(rows)["curve_key"].tolist()
    key = st.selectbox("Curve config", keys, key="cn_key") if len(keys) > 1 else keys[0]
    rows = rows[rows["curve_key"] == key]
    splits = sorted(set(rows["split"]), key=lambda s: s != "test")
    split = st.radio("Split", splits, horizontal=True, key="cn_split") if len(splits) > 1 else splits[0]
    rows = rows[rows["split"] == split]
    c1, c2 = st.columns(2)
    c1.vega_lite_chart(interpolation_chart(rows, "accuracy"), width="stretch")
    c2.vega_lite_chart(interpolation_chart(rows, "loss"), width="stretch")
    table = barrier_table(rows)
    table = table.assign(alignment=[variant_label(a, bool(r)) for a, r in zip(table["align"], table["repair"],
                                                                            strict=True)])
    shown = table[["alignment", "loss_barrier", "accuracy_barrier", "midpoint_accuracy", "midpoint_loss"]]
    st.dataframe(shown, hide_index=True, column_config={
        "loss_barrier": st.column_config.NumberColumn("Loss barrier", format="%.4f"),
        "accuracy_barrier": st.column_config.NumberColumn("Accuracy barrier", format="%.4f"),
        "midpoint_accuracy": st.column_config.NumberColumn("Accuracy at λ = 0.5", format="%.4f"),
        "midpoint_loss": st.column_config.NumberColumn("Loss at λ = 0.5", format="%.4f")})
    download_buttons(rows, f"curve-{model_a}-{model_b}", key="cn-dl")

if tree_id is not None:
    with st.expander("Barrier per level of this tree"):
        tree_rows = reads.tree_curves(int(tree_id))
        tree_rows = tree_rows[tree_rows["split"] == "test"]
        if tree_rows.empty:
            st.info("No node of this tree has its parents' curve yet: compute it for every node below.")
        else:
            tree_rows = tree_rows[tree_rows["curve_key"] == curve_keys(tree_rows)["curve_key"].iloc[0]]
            per_node = barrier_table(tree_rows)
            per_node["alignment"] = [variant_label(a, bool(r)) for a, r in zip(per_node["align"], per_node["repair"],
                                                                                strict=True)]
            levels = (per_node.groupby(["level", "alignment"])[["loss_barrier", "accuracy_barrier"]]
                      .agg(["mean", "std", "count"]).round(4))
            levels.columns = [" ".join(c) for c in levels.columns]
            st.dataframe(levels.reset_index(), hide_index=True)

# this page's starting point: REPAIR on, a 2000-image test subset, 21 λ points
CN_DEFAULTS = {"repair": {"default": True}, "test_subset": {"default": 2000}, "lam_grid": {"default": "21"}}

with st.form("cn_form"):
    st.subheader("Compute curves")
    c1, c2, c3 = st.columns(3)  # every field's widget from ConnectivityConfig's declaration
    raw = {name: field_input(ConnectivityConfig, name, key="cn", container=column, **CN_DEFAULTS.get(name, {}))
           for column, names in ((c1, ("aligns", "repair")), (c2, ("lam_grid", "test_subset")), (c3, ("images",)))
           for name in names}
    whole_tree = c3.checkbox("Every node of this tree", value=False, disabled=tree_id is None)
    with st.expander("More settings"):
        m1, m2, m3 = st.columns(3)
        for i, name in enumerate(n for n in user_fields(ConnectivityConfig) if n not in raw):
            raw[name] = field_input(ConnectivityConfig, name, key="cn", container=(m1, m2, m3)[i % 3])
    b1, b2, _ = st.columns([1, 1, 4])
    computing = b1.form_submit_button("Compute", type="primary")
    estimating = b2.form_submit_button("Estimate time", help="How long these curves take here, without starting "
                                       "(curves already stored under the same settings cost nothing).")
    if computing or estimating:
        if problem and not (whole_tree and tree_id is not None):
            st.error(problem)
            st.stop()
        try:
            config = ConnectivityConfig(**{name: field_value(ConnectivityConfig, name, value)
                                           for name, value in raw.items()})
        except ValueError as err:
            st.error(md(err))
        else:
            if whole_tree and tree_id is not None:
                spec = InterpolateSpec(tree_ids=(int(tree_id),), config=config.to_dict())
            else:
                spec = InterpolateSpec(pairs=((int(model_a), int(model_b)),), config=config.to_dict())
            estimate_caption(spec)
            if computing:
                start_job(spec, "interpolation")
