"""Compare and Tree view on an awkward store (shared leaves, a 3-leaf tree, a custom pairing): the numbers
the Table tab shows equal a hand computation from the evaluation rows; carried nodes are drawn as such."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import AT_TIMEOUT
from tests.awkward_store import EVAL_KEY, build_awkward_store, expected_levels

HOME = str(Path(__file__).resolve().parents[2] / "app" / "Home.py")


@pytest.fixture
def awkward(lab_home):
    return build_awkward_store()


def _page(page: str, query: dict) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=AT_TIMEOUT)
    at.query_params.update(query)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_compare_table_counts_each_model_once_and_leaves_out_carried_nodes(awkward):
    t = awkward["trees"]
    ids = [t[k] for k in ("A", "B", "C", "D", "E")]
    at = _page("pages/compare.py", {"trees": ",".join(map(str, ids)), "eval": EVAL_KEY, "tab": "Table"})
    at.session_state["cmp_tab"] = "Table"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    want = expected_levels(ids)
    acc = want[want["metric"] == "accuracy"].set_index(["group", "level"])
    shown = table.set_index(["group", "level"])
    assert sorted(shown.index) == sorted(acc.index)
    for key, row in acc.iterrows():
        assert int(shown.loc[key, "n"]) == row["n"], key
        text = f"{row['mean']:.4g}" if row["n"] == 1 else f"{row['mean']:.4g} ± {row['std']:.2g}"
        assert shown.loc[key, "accuracy"] == text, key
    assert int(shown.loc[("unmerged leaves", 0), "n"]) == 6  # not 4 + 4 + 3 + 4 + 4
    assert int(shown.loc[("hierarchical", 1), "n"]) == 7  # the carried copy of a leaf is not a merge


def test_tree_view_draws_the_carried_node_as_carried(awkward):
    at = _page("pages/tree_view.py", {"tree": str(awkward["trees"]["C"])})
    dot = at.get("graphviz_chart")[0].proto.spec
    assert dot.count("carried up (no merge)") == 1 and 'label="carried"' in dot and "dashed" in dot
    from store import models

    nodes = models.list_models(tree_id=awkward["trees"]["C"])
    carried = int(nodes.loc[nodes["carried"].astype(bool), "id"].iloc[0])
    at.selectbox(key="tv_node").set_value(carried).run()
    assert not at.exception
    assert "carried up unchanged" in " ".join(str(s.value) for s in at.subheader)
