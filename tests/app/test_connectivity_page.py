"""Connectivity page: empty store, a tree node's stored curves and barrier table, starting a job; Tree view
colours nodes by their parents' barrier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.app.conftest import AT_TIMEOUT

HOME = str(Path(__file__).resolve().parents[2] / "app" / "Home.py")


def _app(page: str) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=AT_TIMEOUT)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _store_tree_curves(tree_id: int) -> list[tuple[int, int, int]]:
    """Real curves (random images) for every merged node's parents of the populated store's tree."""
    from backend.connectivity import ConnectivityConfig, curves_for_pair
    from backend.curve_queries import tree_parent_nodes
    from store import curves as store_curves
    from store import models, weights

    config = ConnectivityConfig(lam_grid=(0, 0.5, 1), aligns=("none", "weight"), repair=True, images=64)
    store_curves.register_curve_config(config.key(), config.to_dict())
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 28, 28, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    nodes = tree_parent_nodes([tree_id])
    for a, b in zip(nodes["model_a"], nodes["model_b"], strict=True):
        pa, pb = (weights.load_weights(models.get_model(int(m))["weights"]) for m in (a, b))
        curves = curves_for_pair(pa, pb, config, test=(x, y), images=x)
        store_curves.save_curves(int(a), int(b), config.key(), [r for c in curves for r in c.rows()])
    return list(zip(nodes["node_id"], nodes["model_a"], nodes["model_b"], strict=True))


def test_connectivity_on_an_empty_store():
    at = _app("views/connectivity.py")
    assert at.info and "two stored models" in at.info[0].value


def test_connectivity_shows_a_nodes_curves_and_starts_a_job(populated_store, no_workers):
    nodes = _store_tree_curves(populated_store["hier_tree"])
    at = _app("views/connectivity.py")
    assert at.radio(key="cn_mode").value == "Tree node"
    root = populated_store["root_id"]
    assert at.selectbox(key="cn_node").value == root
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert [s["title"]["text"] for s in specs] == ["Accuracy along the path", "Loss along the path"]
    table = at.dataframe[0].value
    assert len(table) == 4 and set(table["alignment"]) == {
        "naive (no alignment)", "naive (no alignment) + REPAIR", "weight matching", "weight matching + REPAIR"}
    assert (table["loss_barrier"] >= 0).all()
    levels = at.dataframe[1].value  # barrier per level of the tree
    assert sorted(set(levels["level"])) == [1, 2]

    at.radio(key="cn_mode").set_value("Two models").run()
    leaves = populated_store["leaf_ids"]
    at.selectbox(key="cn_a").set_value(leaves[0]).run()
    at.selectbox(key="cn_b").set_value(leaves[2]).run()
    assert any("No curves between" in i.value for i in at.info)
    compute = next(b for b in at.button if b.label == "Compute")
    at.text_input[0].set_value("0.3,1")
    compute.click().run()
    assert any("start at 0" in e.value for e in at.error)
    at.text_input[0].set_value("5")
    next(b for b in at.button if b.label == "Estimate time").click().run()  # prices the curves, starts nothing
    assert not at.exception and any(c.value.startswith("Estimated time here") for c in at.caption)
    from store import jobs

    assert "interpolate" not in set(jobs.list_jobs()["kind"])
    next(b for b in at.button if b.label == "Compute").click().run()
    assert not at.exception

    spec = json.loads(jobs.list_jobs()["spec"].iloc[0])
    assert spec["kind"] == "interpolate" and spec["pairs"] == [[leaves[0], leaves[2]]]
    assert spec["config"]["lam_grid"] == [0.0, 0.25, 0.5, 0.75, 1.0] and spec["config"]["repair"] is True
    assert no_workers and len(nodes) == 3


def test_tree_view_colours_nodes_by_parents_barrier(populated_store):
    _store_tree_curves(populated_store["hier_tree"])
    at = AppTest.from_file(HOME, default_timeout=AT_TIMEOUT)
    at.query_params["tree"] = str(populated_store["hier_tree"])
    at.run()
    at.switch_page("views/tree_view.py").run()
    options = at.selectbox(key="tv_metric").options
    assert "loss barrier · weight matching" in options
    at.selectbox(key="tv_metric").set_value("loss barrier · weight matching").run()
    assert not at.exception
    assert "loss barrier · weight matching = " in at.get("graphviz_chart")[0].proto.spec


def test_compare_barriers_tab(populated_store):
    empty = AppTest.from_file(HOME, default_timeout=AT_TIMEOUT)
    empty.query_params["trees"] = str(populated_store["hier_tree"])
    empty.run()
    empty.switch_page("views/compare.py").run()
    empty.session_state["cmp_tab"] = "Barriers"
    empty.run()
    assert not empty.exception and any("No interpolation curves" in i.value for i in empty.info)

    _store_tree_curves(populated_store["hier_tree"])
    import streamlit as st

    st.cache_data.clear()  # as after the job finished and the cached read expired
    at = AppTest.from_file(HOME, default_timeout=AT_TIMEOUT)
    at.query_params["trees"] = str(populated_store["hier_tree"])
    at.run()
    at.switch_page("views/compare.py").run()
    at.session_state["cmp_tab"] = "Barriers"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    titles = [s["title"]["text"] for s in specs]
    assert titles == ["Loss barrier between the parents per merge level",
                      "Accuracy barrier between the parents per merge level"]


def test_barrier_level_frames_match_the_barrier_table(populated_store):
    from backend.curve_queries import barrier_level_frames, barrier_table, tree_curves

    _store_tree_curves(populated_store["hier_tree"])
    summary, points, key = barrier_level_frames([populated_store["hier_tree"]])
    table = barrier_table(tree_curves([populated_store["hier_tree"]]))
    assert len(points) == 2 * len(table)
    naive = summary[(summary["group"] == "hierarchical · naive (no alignment)") & (summary["metric"] == "loss_barrier")]
    ref = table[(table["align"] == "none") & ~table["repair"].astype(bool)].groupby("level")["loss_barrier"].mean()
    assert dict(zip(naive["level"], naive["mean"], strict=True)) == pytest.approx(ref.to_dict())
    assert set(summary["n"][summary["level"] == 1]) == {2} and key is not None
