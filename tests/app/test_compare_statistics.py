"""Compare and Tree view on an awkward store (shared leaves, a 3-leaf tree, a custom pairing): the numbers
the Table tab shows equal a hand computation from the evaluation rows; carried nodes are drawn as such."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import AT_TIMEOUT
from tests.awkward_store import EVAL_KEY, OTHER_KEY, build_awkward_store, expected_levels

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
    at = _page("views/compare.py", {"trees": ",".join(map(str, ids)), "eval": EVAL_KEY, "tab": "Table"})
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
    at = _page("views/tree_view.py", {"tree": str(awkward["trees"]["C"])})
    dot = at.get("graphviz_chart")[0].proto.spec
    assert dot.count("carried up (no merge)") == 1 and 'label="carried"' in dot and "dashed" in dot
    from store import models

    nodes = models.list_models(tree_id=awkward["trees"]["C"])
    carried = int(nodes.loc[nodes["carried"].astype(bool), "id"].iloc[0])
    at.selectbox(key="tv_node").set_value(carried).run()
    assert not at.exception
    assert "carried up unchanged" in " ".join(str(s.value) for s in at.subheader)


def test_compare_says_which_tree_lacks_the_linked_config_and_offers_the_one_it_has(awkward):
    t = awkward["trees"]
    at = _page("views/compare.py", {"trees": f"{t['A']},{t['B']}", "eval": OTHER_KEY})
    assert at.selectbox(key="cmp_eval").value == OTHER_KEY  # the link's config, though fewer models have it
    warnings = " | ".join(str(w.value) for w in at.warning)
    assert f"Tree #{t['B']} has results for only 2 of its models in this evaluation config" in warnings
    assert "test subset 64" in warnings  # the config it has, by a human label, not a hash
    options = at.selectbox(key="cmp_eval").options
    assert any("test subset 32" in o and "metrics accuracy" in o for o in options)
    at.button(key=f"cmp-switch-tree {t['B']}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="cmp_eval").value == EVAL_KEY
    assert "in this evaluation config" not in " | ".join(str(w.value) for w in at.warning)
    assert at.query_params["eval"] == [EVAL_KEY] or at.query_params["eval"] == EVAL_KEY


def test_a_merge_job_with_evaluation_records_its_eval_config_for_the_runs_link():
    from backend.evaluate.config import EvalConfig
    from backend.jobs.runner import job_eval_key
    from backend.runs import result_targets

    spec = {"kind": "merge", "model_ids": [1, 2], "methods": ["hierarchical"], "evaluate": {"subset": 64}}
    key = EvalConfig(subset=64).key()
    assert job_eval_key(spec) == key and job_eval_key({"kind": "evaluate", "eval": {"subset": 64}}) == key
    assert job_eval_key({"kind": "merge", "model_ids": [1, 2]}) is None
    assert result_targets({"tree_ids": [3], "eval_key": key})["eval"] == key  # what Runs puts in the link


def test_compare_splits_series_by_a_setting_from_the_url(awkward):
    t = awkward["trees"]
    ids = [t[k] for k in ("A", "C", "D")]
    at = _page("views/compare.py", {"trees": ",".join(map(str, ids)), "eval": EVAL_KEY, "split": "leaves",
                                    "tab": "Table", "log": "1"})
    assert at.multiselect(key="cmp_split").value == ["leaves"]
    assert at.toggle(key="cmp_log").value is True and at.session_state["cmp_tab"] == "Table"  # from the URL
    assert at.dataframe, "the Table tab opened from the URL"
    at.toggle(key="cmp_log").set_value(False).run()
    labels = at.multiselect(key="cmp_trees").options
    assert any("pairing (0,2)(1,3) | (0,1)" in o and "λ 0.5" in o for o in labels)  # tree labels say how
    at.session_state["cmp_tab"] = "Table"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    groups = set(at.dataframe[0].value["group"])
    assert groups == {"unmerged leaves", "hierarchical · 4 leaves", "hierarchical · 3 leaves"}
    assert at.query_params["split"] in ("leaves", ["leaves"])


def test_compare_draws_each_models_curve_from_the_url(awkward):
    import json

    t = awkward["trees"]
    at = _page("views/compare.py", {"trees": f"{t['A']},{t['C']}", "eval": EVAL_KEY, "models": "1"})
    assert at.toggle(key="cmp_models").value is True
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    fgsm = next(s for s in specs if s["title"]["text"].startswith("FGSM robust accuracy"))
    assert "individual models" in fgsm["title"]["subtitle"] and len(fgsm["layer"]) == 3
    at.toggle(key="cmp_models").set_value(False).run()
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    fgsm = next(s for s in specs if s["title"]["text"].startswith("FGSM robust accuracy"))
    assert len(fgsm["layer"]) == 2 and at.query_params["models"] in ("0", ["0"])


def test_compare_restores_the_merge_methods_metric_from_the_url(awkward):
    import json

    t = awkward["trees"]
    at = _page("views/compare.py", {"trees": f"{t['A']},{t['E']}", "eval": EVAL_KEY, "tab": "Merge methods",
                                    "metric": "weight_norm"})
    assert at.selectbox(key="cmp_method_metric").value == "weight_norm"
    (spec,) = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert spec["title"]["text"].startswith("Weight norm")
    at.selectbox(key="cmp_method_metric").set_value("accuracy").run()
    assert at.query_params["metric"] in ("accuracy", ["accuracy"])
