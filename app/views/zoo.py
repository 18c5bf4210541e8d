"""Zoo: train a zoo of MLPs (as a background job) and browse every stored model."""

from __future__ import annotations

import streamlit as st

from app.ui import reads
from app.ui.text import md
from app.ui.widgets import (
    SELECTED_MODELS,
    download_buttons,
    estimate_caption,
    executor_input,
    field_input,
    field_value,
    start_job,
)
from backend.charts import training_chart
from backend.jobs.spec import TrainSpec
from backend.train_config import TrainConfig

st.title("Zoo")
st.caption("A zoo is n models of one architecture and training config that differ only in their seed. "
           "Regularised zoos (L1/L2) serve as references on Compare.")

STATUS_MARK = {"available": "on disk", "downloadable": "will download", "missing": "missing"}
# this page's starting point (a small, fast first zoo); everything else starts at the declared defaults
PAGE_DEFAULTS = {"name": "fmnist-small", "dataset": "fashion_mnist", "n_models": 4, "widths": (128, 64), "epochs": 1,
                 "train_subset": 12000, "reg_strength": 1e-4}

with st.expander("Train a new zoo", expanded=reads.counts().get("models", 0) == 0):
    with st.form("train_zoo"):  # every field's widget from the declarations of TrainConfig and TrainSpec
        raw = {}

        def field(container, cls, name, **kw):
            if name in PAGE_DEFAULTS:
                kw["default"] = PAGE_DEFAULTS[name]
            raw[name] = (cls, field_input(cls, name, key="train", container=container, **kw))

        c1, c2, c3 = st.columns(3)
        field(c1, TrainSpec, "name")
        field(c1, TrainConfig, "dataset", show=lambda d: f"{d} ({STATUS_MARK[reads.dataset_status(d)]})")
        field(c1, TrainSpec, "n_models")
        for name in ("widths", "epochs", "train_subset"):
            field(c2, TrainConfig, name)
        for name in ("optimizer", "lr", "batch_size"):
            field(c3, TrainConfig, name)
        r1, r2, r3, r4 = st.columns(4)
        field(r1, TrainConfig, "reg")
        field(r2, TrainConfig, "reg_strength")
        field(r3, TrainSpec, "base_seed")
        field(r4, TrainSpec, "curve_every")
        m1, m2, _ = st.columns(3)
        field(m1, TrainConfig, "momentum")
        field(m2, TrainConfig, "augment")
        executor = executor_input("train_zoo")
        b1, b2, _ = st.columns([1, 1, 4])
        submitted = b1.form_submit_button("Train zoo", type="primary")
        estimating = b2.form_submit_button("Estimate time", help="How long this zoo takes here, without starting it "
                                           "(models already stored under the same settings cost nothing).")

    if submitted or estimating:
        try:
            values = {name: field_value(cls, name, value) for name, (cls, value) in raw.items()}
            zoo = {name: values.pop(name) for name in ("name", "n_models", "base_seed", "curve_every")}
            reg = values["reg"]
            if reg == "none":
                values["reg_strength"] = 0.0  # the strength box keeps its value for when a penalty is chosen
            config = TrainConfig(**values)
            if reg != "none" and config.reg_strength <= 0:
                raise ValueError(f"an {reg.upper()} zoo needs a positive regularisation strength")
            if reads.dataset_status(config.dataset) == "missing":
                raise ValueError(f"{config.dataset} is not on disk and cannot be downloaded here; choose fashion_mnist")
            name = zoo["name"].strip()
            spec = TrainSpec(train=config.to_dict(), zoo_kind={"none": "plain"}.get(reg, reg), **{**zoo, "name": name})
            spec.validate()
        except ValueError as err:
            st.error(f"Cannot train this zoo: {md(err)}")
        else:
            estimate_caption(spec)
            if submitted:
                start_job(spec, f"zoo '{name}'", executor)

st.subheader("All models")
zoos = reads.zoos()
models = reads.models_table()
if models.empty:
    st.info("No models yet. Train a zoo above, or start the demo preset on Home.")
    st.stop()

LEVELS = {0: "0 · unmerged"}
f1, f2, f3, f4 = st.columns(4)
zoo_names = dict(zip(zoos["id"].astype(int), zoos["name"], strict=True))
wanted = [int(z) for z in st.query_params.get("zoos", "").split(",") if z.strip().isdigit()]  # from Runs
if wanted and "zoo-filter" not in st.session_state:
    st.session_state["zoo-filter"] = [z for z in wanted if z in zoo_names]
zoo_pick = f1.multiselect("Zoo", list(zoo_names), format_func=lambda z: f"#{z} {zoo_names[z]}", key="zoo-filter")
kind_pick = f2.multiselect("Kind", sorted(models["kind"].dropna().unique()), key="zoo-kind")
dataset_pick = f3.multiselect("Dataset", sorted(models["dataset"].dropna().unique()), key="zoo-dataset")
evaluated_pick = f4.selectbox("Evaluated", ("all models", "evaluated", "not evaluated"), key="zoo-evaluated")
view = models
if zoo_pick:
    view = view[view["zoo_id"].isin(zoo_pick)]
if kind_pick:
    view = view[view["kind"].isin(kind_pick)]
if dataset_pick:
    view = view[view["dataset"].isin(dataset_pick)]
if evaluated_pick != "all models":
    view = view[view["accuracy"].notna() == (evaluated_pick == "evaluated")]
view = view.reset_index(drop=True)
labels = reads.eval_labels()
view["evaluated_with"] = [labels.get(k, str(k)[:8]) if isinstance(k, str) and k else "not evaluated"
                          for k in view["eval_key"]]

st.caption(f"{len(view)} of {len(models)} models. Select rows (the boxes on the left) to hand them to the "
           "Merge builder and to plot their training curves.")
event = st.dataframe(
    view, key="models_table", on_select="rerun", selection_mode="multi-row", hide_index=True, placeholder="–",
    column_order=["model_id", "kind", "zoo_name", "zoo_kind", "dataset", "widths", "level", "accuracy",
                  "evaluated_with", "train_acc", "epochs", "optimizer", "lr", "reg", "reg_strength", "seed",
                  "tree_id"],
    column_config={"model_id": st.column_config.NumberColumn("model", format="#%d"),
                   "kind": st.column_config.TextColumn("kind"),
                   "zoo_name": st.column_config.TextColumn("zoo"),
                   "zoo_kind": st.column_config.TextColumn("zoo kind"),
                   "dataset": st.column_config.TextColumn("dataset"),
                   "widths": st.column_config.TextColumn("hidden widths"),
                   "level": st.column_config.NumberColumn("merge level"),
                   "accuracy": st.column_config.NumberColumn("test accuracy", format="%.4f"),
                   "evaluated_with": st.column_config.TextColumn(
                       "evaluated with", help="the evaluation config the test accuracy comes from (key · test "
                                              "images), or 'not evaluated'"),
                   "train_acc": st.column_config.NumberColumn("train accuracy", format="%.4f"),
                   "epochs": st.column_config.NumberColumn("epochs"),
                   "optimizer": st.column_config.TextColumn("optimizer"),
                   "lr": st.column_config.NumberColumn("learning rate", format="%.0e"),
                   "reg": st.column_config.TextColumn("regularisation"),
                   "reg_strength": st.column_config.NumberColumn("reg. strength", format="%.0e"),
                   "seed": st.column_config.NumberColumn("seed", format="%d"),
                   "tree_id": st.column_config.NumberColumn("tree", format="#%d")})
rows = event.selection.rows if event is not None else []
selected = [int(view.loc[r, "model_id"]) for r in rows if r < len(view)]
if selected:
    st.session_state[SELECTED_MODELS] = selected
    st.success(f"{len(selected)} model(s) selected: {selected}")
    st.page_link("views/merge_builder.py", label="Merge the selected models", icon=":material/account_tree:")
download_buttons(view, "models", key="models-dl")

st.subheader("Training curves")
if selected:
    points, scope = reads.train_curves(model_ids=selected), "the selected models"
elif zoo_pick:
    points, scope = reads.train_curves(zoo_ids=zoo_pick), "the chosen zoos"
else:
    points, scope = reads.train_curves(zoo_ids=list(zoo_names)), "every zoo"
if points.empty:
    st.info(f"No training curves for {scope}: training jobs record them per epoch (and every N steps when "
            "asked); models trained before this lab recorded them have none.")
else:
    st.caption(f"Loss and accuracy per epoch of {scope}, {points['model_key'].nunique()} models, grouped by "
               "zoo kind: thin lines are models, the band spans each group's min..max, the thick line is its "
               "mean, so a diverging seed stands out.")
    c1, c2 = st.columns(2)
    for col, metric in zip((c1, c2), ("loss", "acc"), strict=True):
        col.vega_lite_chart(spec=training_chart(points, metric), width="stretch")
