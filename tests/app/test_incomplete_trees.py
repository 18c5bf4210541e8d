"""A tree without its root (merge still running, or killed) is never shown as a finished result: Compare does
not offer it, Tree view says it is incomplete, the CLI export refuses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import AT_TIMEOUT

HOME = str(Path(__file__).resolve().parents[2] / "app" / "Home.py")


@pytest.fixture
def half_tree(populated_store):
    """A hierarchical tree over the populated store's leaves with one node stored and no root."""
    from store import models, trees

    leaves = populated_store["leaf_ids"]
    tree_id = trees.create_tree("hierarchical", leaves, {"lam": 0.3, "pairing": "as_listed"}, key="tree-half")
    first = models.get_model(populated_store["root_id"])
    node = models.add_model(kind="hierarchical", dataset="fashion_mnist", widths=[16, 8], config={},
                            weights=first["weights"], key="half-node-4", tree_id=tree_id, level=1, node_index=4,
                            parents=leaves[:2])
    trees.add_merge(tree_id, node, "hierarchical", 0.3, 1, [], 0.0)
    return tree_id


def _app(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=AT_TIMEOUT)
    if query:
        at.query_params.update(query)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_trees_table_marks_a_tree_without_root_incomplete(populated_store, half_tree):
    from backend.listings import trees_table

    table = trees_table().set_index("tree_id")
    assert not table.loc[half_tree, "complete"] and "incomplete" in table.loc[half_tree, "label"]
    assert table.loc[populated_store["hier_tree"], "complete"]
    assert "incomplete" not in table.loc[populated_store["hier_tree"], "label"]


def test_compare_does_not_offer_an_incomplete_tree(populated_store, half_tree):
    at = _app("views/compare.py", query={"trees": f"{half_tree},{populated_store['hier_tree']}"})
    picker = at.multiselect(key="cmp_trees")
    assert half_tree not in picker.options and half_tree not in picker.value
    assert populated_store["hier_tree"] in picker.value
    assert any(f"#{half_tree}" in c.value and "incomplete" in c.value for c in at.caption)


def test_tree_view_says_a_tree_is_incomplete(populated_store, half_tree):
    at = _app("views/tree_view.py", query={"tree": str(half_tree)})
    assert any("incomplete" in w.value for w in at.warning), [w.value for w in at.warning]
    at = _app("views/tree_view.py", query={"tree": str(populated_store["hier_tree"])})
    assert not any("incomplete" in w.value for w in at.warning)


def test_export_refuses_an_incomplete_tree_and_an_unknown_eval_key(populated_store, half_tree, tmp_path, capsys):
    from backend.cli import main

    out = tmp_path / "x.csv"
    assert main(["export", "--tree", str(half_tree), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "incomplete" in err and "\n" not in err and not out.exists()
    assert main(["export", "--tree", str(populated_store["hier_tree"]), "--eval-key", "nope",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no evaluation config 'nope'" in err and populated_store["eval_key"] in err and not out.exists()
    assert main(["export", "--tree", "999", "--out", str(out)]) == 2
    assert "tree 999 does not exist" in capsys.readouterr().err
