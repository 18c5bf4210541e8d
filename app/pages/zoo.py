"""Zoo: train a zoo of MLPs (as a background job) and browse every stored model."""

from __future__ import annotations

import streamlit as st

from app.ui import reads
from app.ui.curves import curve_chart
from app.ui.text import md
from app.ui.widgets import SELECTED_MODELS, download_buttons, parse_ints, start_job
from backend.data import DATASETS
from backend.jobs.spec import TrainSpec
from backend.train import TrainConfig

st.title("Zoo")
st.caption("A zoo is n models of one architecture and training config that differ only in their seed. "
           "Regularised zoos (L1/L2) serve as references on Compare.")

STATUS_MARK = {"available": "on disk", "downloadable": "will download", "missing": "missing"}

with st.expander("Train a new zoo", expanded=reads.counts().get("models", 0) == 0):
    with st.form("train_zoo"):
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Zoo name", value="fmnist-small")
        dataset = c1.selectbox("Dataset", DATASETS, index=DATASETS.index("fashion_mnist"),
                               format_func=lambda d: f"{d} ({STATUS_MARK[reads.dataset_status(d)]})")
        n_models = c1.number_input("Number of models", min_value=1, max_value=10000, value=4, step=1)
        widths_text = c2.text_input("Hidden widths", value="128, 64",
                                    help="Comma-separated hidden layer widths; the paper uses 512, 512, 512, 256.")
        epochs = c2.number_input("Epochs", min_value=1, max_value=1000, value=1, step=1)
        train_subset = c2.number_input("Train subset (0 = whole split)", min_value=0, value=12000, step=1000,
                                       help="Train on the first N samples only: much faster for a first look.")
        optimizer = c3.selectbox("Optimizer", ("adam", "sgd"))
        lr = c3.number_input("Learning rate", min_value=0.0, value=1e-3, format="%.5f", step=1e-4)
        batch_size = c3.number_input("Batch size", min_value=1, value=512, step=64)
        r1, r2, r3, r4 = st.columns(4)
        reg = r1.selectbox("Regularisation", ("none", "l1", "l2"),
                           format_func={"none": "none (plain zoo)", "l1": "L1", "l2": "L2"}.get)
        reg_strength = r2.number_input("Strength (λ of the penalty)", min_value=0.0, value=1e-4, format="%.6f",
                                       help="Ignored for 'none'. Added to the loss as λ·Σ|w| (L1) or λ·Σw² (L2).")
        base_seed = r3.number_input("Base seed", min_value=0, value=0, step=1)
        curve_every = r4.number_input("Curve point every N steps (0 = per epoch)", min_value=0, value=0, step=10,
                                      key="zoo-curve-every",
                                      help="Also record each model's loss and accuracy over the last N training "
                                           "steps every N steps, so its live curve on Runs moves within an epoch.")
        submitted = st.form_submit_button("Train zoo", type="primary")

    if submitted:
        try:
            config = TrainConfig(
                dataset=dataset, widths=parse_ints(widths_text, "Hidden widths"), epochs=int(epochs),
                batch_size=int(batch_size), optimizer=optimizer, lr=float(lr), reg=reg,
                reg_strength=float(reg_strength) if reg != "none" else 0.0,
                train_subset=int(train_subset) or None)
            if reg != "none" and reg_strength <= 0:
                raise ValueError(f"an {reg.upper()} zoo needs a positive regularisation strength")
            if reads.dataset_status(dataset) == "missing":
                raise ValueError(f"{dataset} is not on disk and cannot be downloaded here; choose fashion_mnist")
        except ValueError as err:
            st.error(f"Cannot train this zoo: {md(err)}")
        else:
            spec = TrainSpec(name=name.strip(), train=config.to_dict(), n_models=int(n_models),
                             base_seed=int(base_seed), zoo_kind={"none": "plain"}.get(reg, reg),
                             curve_every=int(curve_every) or None)
            start_job(spec, f"zoo '{name.strip()}'")

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
    st.page_link("pages/merge_builder.py", label="Merge the selected models", icon=":material/account_tree:")
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
        col.vega_lite_chart(spec=curve_chart(points, metric), width="stretch")
