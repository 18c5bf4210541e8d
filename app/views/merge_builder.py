"""Merge builder: pick leaves, choose methods and the tree's pairing, see the tree, choose evaluations, start."""

from __future__ import annotations

import streamlit as st

from app.ui import reads
from app.ui.frame import empty_state
from app.ui.graphs import plan_dot
from app.ui.text import md
from app.ui.widgets import (
    SELECTED_MODELS,
    estimate_caption,
    eval_config_inputs,
    executor_input,
    merge_option_input,
    parse_ints,
    start_job,
)
from backend.jobs.spec import MergeSpec
from backend.leaves import compatibility_problem
from backend.merge.registry import (
    ALIGNMENT_OPTIONS,
    MERGE_METHODS,
    OPTIONS,
    STUDY_METHODS,
    method_label,
    needs_images,
)
from backend.merge.tree import parse_pairing, plan_tree

st.title("Merge builder")
st.caption("Leaves are merged pairwise level by level (hierarchical Re-Basin: 2ⁿ → 2ⁿ⁻¹ → … → 1), and/or all "
           "at once (MergeMany), and/or naively averaged without alignment — all over the same leaves so "
           "Compare can pair them. Every merged node is stored and, if you ask, evaluated.")

models = reads.models_table()
if models.empty:
    empty_state("No models in the store yet. Train a zoo first.", "zoo")

# -- 1. leaves ---------------------------------------------------------------------------------------------
st.subheader("1 · Leaves")
selected = st.session_state.get(SELECTED_MODELS, [])
sources = (["Selected on the Zoo page"] if selected else []) + ["From a zoo", "Type model ids"]
source = st.radio("Take the leaves", sources, horizontal=True, key="leaf_source")
problems: list[str] = []
leaf_ids: list[int] = []
if source == "Selected on the Zoo page":
    leaf_ids = list(selected)
elif source == "From a zoo":
    zoos = reads.zoos()
    if zoos.empty:
        problems.append("There is no zoo yet; train one on the Zoo page.")
    else:
        names = dict(zip(zoos["id"].astype(int), zoos["name"], strict=True))
        zoo_id = st.selectbox("Zoo", list(names), format_func=lambda z: f"#{z} {names[z]}", key="leaf_zoo")
        members = models[(models["zoo_id"] == zoo_id) & (models["level"] == 0)]["model_id"].astype(int).tolist()
        c1, c2 = st.columns(2)
        count = c1.number_input("How many leaves", min_value=1, max_value=max(1, len(members)),
                                value=min(len(members), 4) or 1, key=f"leaf_count-{zoo_id}")
        start = c2.number_input("Starting at position", min_value=0, max_value=max(0, len(members) - 1),
                                value=0, key=f"leaf_start-{zoo_id}")
        leaf_ids = members[int(start):int(start) + int(count)]
else:
    text = st.text_input("Model ids, in leaf order", placeholder="e.g. 1, 2, 3, 4", key="leaf_ids")
    if text.strip():
        try:
            leaf_ids = list(parse_ints(text, "Model ids"))
        except ValueError as err:
            problems.append(str(err))

leaves = models.set_index("model_id").reindex(leaf_ids)
unknown = [i for i in leaf_ids if i not in set(models["model_id"])]
if unknown:
    problems.append(f"Model id(s) {unknown} are not in the store.")
if len(set(leaf_ids)) != len(leaf_ids):
    problems.append("A model is listed twice; every leaf must be a different model.")
if len(leaf_ids) < 2:
    problems.append(f"A merge needs at least 2 models; {len(leaf_ids)} chosen.")
known = leaves.dropna(subset=["kind"])
if (problem := compatibility_problem(known.to_dict("records"), "merge")) is not None:
    problems.append(f"Leaves: {problem}.")
if not known.empty:
    st.dataframe(known.reset_index()[["model_id", "kind", "zoo_name", "dataset", "widths", "accuracy", "seed"]],
                 hide_index=True, height=min(35 * (len(known) + 1) + 3, 250))

# -- 2. methods and the tree ----------------------------------------------------------------------------------
st.subheader("2 · Methods and tree")
# pairing has its own section below; the matcher/REPAIR options get a row of their own
scalars = [o for name, o in OPTIONS.items() if name != "pairing" and name not in ALIGNMENT_OPTIONS]
methods = st.multiselect("Methods", list(MERGE_METHODS), default=list(STUDY_METHODS), key="methods",
                         format_func=method_label)  # full width: its chips are never truncated
columns = st.columns(max(len(scalars), 1))
values: dict = {o.name: merge_option_input(o, column) for o, column in zip(scalars, columns, strict=False)}
alignment = [OPTIONS[name] for name in ALIGNMENT_OPTIONS]
values.update({o.name: merge_option_input(o, column)
               for o, column in zip(alignment, st.columns(len(alignment)), strict=True)})
if not needs_images(values):
    st.caption("The image batch (number, split, seed) is used only by activation matching and REPAIR.")
if not methods:
    problems.append("Choose at least one merge method.")

pairing_mode = st.radio(OPTIONS["pairing"].label, ["as listed", "random (seeded)", "custom pairs"],
                        horizontal=True, key="pairing_mode")
pairing: str | list = {"as listed": "as_listed", "random (seeded)": "random"}.get(pairing_mode, "as_listed")
if pairing_mode == "custom pairs":
    n_leaves = max(len(leaf_ids), 2)
    default = "\n".join(", ".join("-".join(map(str, group)) for group in level)
                        for level in plan_tree(n_leaves, "as_listed"))  # valid for this leaf count
    text = st.text_area("One level per line; pairs as 'a-b' separated by commas; a lone index is carried up. "
                        "Indices count the previous level's nodes from 0.", value=default, key=f"pairs-{n_leaves}")
    try:
        pairing = parse_pairing(text)
        plan_tree(n_leaves, pairing)
    except ValueError as err:
        st.error(md(f"Custom pairs: {err}"))  # next to the field it is about
        problems.append(f"Custom pairs: {err}")

plan = None
if len(leaf_ids) >= 2 and any("pairing" in MERGE_METHODS[m].options for m in methods):
    try:
        plan = plan_tree(len(leaf_ids), pairing, int(values.get("seed", 0)))
    except ValueError as err:
        problems.append(f"Tree: {err}")
if plan is not None:
    if len(leaf_ids) & (len(leaf_ids) - 1):
        st.info(f"{len(leaf_ids)} leaves is not a power of two: at a level with an odd count, the last node is "
                "carried up unchanged (drawn grey).")
    accuracy = dict(zip(models["model_id"].astype(int), models["accuracy"], strict=True))
    labels = [f"#{i}" + (f"\nacc {accuracy[i]:.3f}" if accuracy.get(i) == accuracy.get(i) and i in accuracy else "")
              for i in leaf_ids]
    st.graphviz_chart(plan_dot(plan, labels))

# -- 3. evaluation --------------------------------------------------------------------------------------------
st.subheader("3 · Evaluation")
evaluate = st.checkbox("Evaluate every node (leaves included) when the merge is done", value=True, key="do_eval")
eval_dict = None
if evaluate:
    try:
        eval_dict = eval_config_inputs("merge_eval", subset_default=1000).to_dict()
    except ValueError as err:
        problems.append(f"Evaluation: {err}")

# -- 4. start -------------------------------------------------------------------------------------------------
st.subheader("4 · Start")
for problem in problems:
    st.error(md(problem))
spec = None
if not problems:
    try:
        spec = MergeSpec(model_ids=tuple(leaf_ids), methods=tuple(methods), **values, pairing=pairing,
                         evaluate=eval_dict)
        estimate_caption(spec)
    except ValueError:  # the start button says what is wrong
        pass
executor = executor_input("merge")
if st.button("Start merge", type="primary", disabled=bool(problems), key="start_merge"):
    spec = spec or MergeSpec(model_ids=tuple(leaf_ids), methods=tuple(methods), **values, pairing=pairing,
                             evaluate=eval_dict)
    start_job(spec, f"merge of {len(leaf_ids)} models", executor)
