"""Tree view: one merge tree drawn as a graph, nodes coloured by a metric; inspect any node."""

from __future__ import annotations

import streamlit as st

from app.ui import reads
from app.ui.frame import empty_state
from app.ui.graphs import metric_title, ramp_legend_html, tree_dot
from app.ui.widgets import TREE_ID, download_buttons

st.title("Tree view")
st.caption("Leaves (level 0) on top, the root at the bottom; the colour bar under the tree reads the colours. "
           "Wide levels (e.g. an 8-leaf MergeMany) show only node ids and values; inspect a node for the rest.")

trees = reads.trees()
if trees.empty:
    empty_state("No trees yet. Build a merge in the Merge builder or start the demo preset on Home.", "merge")

labels = dict(zip(trees["tree_id"].astype(int), trees["label"], strict=True))
wanted = st.query_params.get("tree", "")
hierarchical = trees.loc[trees["method"] == "hierarchical", "tree_id"].astype(int).tolist()
default = int(wanted) if wanted.isdigit() and int(wanted) in labels else st.session_state.get(
    TREE_ID, hierarchical[0] if hierarchical else None)
ids = list(labels)
tree_id = st.selectbox("Tree", ids, index=ids.index(default) if default in labels else 0,
                       format_func=labels.get, key="tv_tree")
st.session_state[TREE_ID] = tree_id
if not bool(trees.set_index("tree_id").loc[tree_id, "complete"]):
    st.warning("This tree is incomplete: it has no root yet, because its merge job is still running or was "
               "interrupted. Only the nodes stored so far are drawn; rerun the same merge (Merge builder or "
               "`python -m backend merge`) to finish it — stored nodes are not recomputed.")

eval_keys = reads.eval_keys((int(tree_id),))["eval_key"].tolist()
eval_key = None
if len(eval_keys) > 1:
    eval_key = st.selectbox("Evaluation config", eval_keys, key="tv_eval")
elif eval_keys:
    eval_key = eval_keys[0]
nodes = reads.tree_node_table(int(tree_id), eval_key)
barriers = reads.node_barriers(int(tree_id))  # parents' interpolation barriers, when computed (Connectivity)
if len(barriers.columns) > 1:
    nodes = nodes.merge(barriers, on="model_id", how="left")

base_columns = {"model_id", "level", "kind", "carried", "node_index", "parents", "widths", "seed"}
metric_columns = [c for c in nodes.columns if c not in base_columns]
c1, c2 = st.columns(2)
preferred = "accuracy" if "accuracy" in metric_columns else (metric_columns[0] if metric_columns else None)
metric = c1.selectbox("Colour nodes by", metric_columns or ["(no evaluations yet)"],
                      index=metric_columns.index(preferred) if preferred else 0, key="tv_metric",
                      format_func=metric_title if metric_columns else str)
node_ids = nodes["model_id"].astype(int).tolist()
node = c2.selectbox("Inspect node", node_ids, index=len(node_ids) - 1, key="tv_node",
                    format_func=lambda m: f"#{m} · level {int(nodes.set_index('model_id').loc[m, 'level'])}")

st.graphviz_chart(tree_dot(nodes, metric if metric_columns else None, selected=node))
if metric_columns and nodes[metric].notna().any():
    st.markdown(ramp_legend_html(float(nodes[metric].min()), float(nodes[metric].max()), metric_title(metric)),
                unsafe_allow_html=True)

row = nodes.set_index("model_id").loc[node]
carried = bool(row.get("carried", False))
st.subheader(f"Node #{node} · level {int(row['level'])} · {'carried up unchanged' if carried else row['kind']}")
if carried:
    st.caption("An odd number of nodes at the level below: this node is its one parent moved up unchanged "
               "(same weights), not a merge, so Compare and the exports leave it out of the level's statistics.")
parents = list(row["parents"])
st.markdown("**Parents:** " + (", ".join(f"#{p}" for p in parents) if parents else "none (a leaf)"))
if metric_columns:
    values = row[metric_columns].dropna()
    st.dataframe(values.rename("value").rename_axis("metric").reset_index().assign(
        title=lambda d: d["metric"].map(metric_title))[["title", "metric", "value"]], hide_index=True, width="content")
else:
    st.info("This tree has no evaluations yet; evaluate it from the Merge builder or wait for its job on Runs.")
st.page_link("views/compare.py", label="Compare this tree's levels", icon=":material/bar_chart:",
             query_params={"trees": str(tree_id), **({"eval": eval_key} if eval_key else {})})
with st.expander("All nodes as a table"):
    st.dataframe(nodes, hide_index=True)
    download_buttons(nodes.drop(columns=["parents"]).assign(parents=nodes["parents"].map(str)),
                     f"tree-{tree_id}", key="tv-dl")
