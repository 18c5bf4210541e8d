"""Report page: presets and a start button on an empty store; lazy section tabs, downloads and a rebuild
on a store holding a finished (tiny, real) experiment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import AT_TIMEOUT

HOME = str(Path(__file__).resolve().parents[2] / "app" / "Home.py")


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def _report_page() -> AppTest:
    at = _ok(AppTest.from_file(HOME, default_timeout=AT_TIMEOUT).run())
    return _ok(at.switch_page("views/report.py").run())


def test_empty_store_explains_and_starts_an_experiment(no_workers):
    from backend.experiment import PRESETS
    from store import jobs

    at = _report_page()
    assert "No experiment yet" in _texts(at.info)
    assert at.radio(key="report_preset").options == list(PRESETS)
    assert "estimate" in _texts(at.caption) and "models to train" in _texts(at.caption)
    at.radio(key="report_preset").set_value("demo")
    next(b for b in at.button if b.label == "Start experiment").click()
    _ok(at.run())
    rows = jobs.list_jobs()
    assert list(rows["kind"]) == ["experiment"] and no_workers == [int(rows["id"].iloc[0])]
    assert json.loads(rows["spec"].iloc[0])["preset"] == "demo"
    assert "Started demo experiment" in _texts(at.success)


@pytest.fixture
def finished_experiment(populated_store):
    """The populated store's 4-leaf trees and zoos recorded as one finished experiment (as run_experiment
    records it), without training anything."""
    from backend.experiment import PRESETS
    from store import evaluations, experiments

    info = populated_store
    trees = {"hierarchical": info["hier_tree"], "merge_many": info["mm_tree"], "average": info["avg_tree"]}
    result = {"plan": PRESETS["demo"].to_dict(), "eval_key": info["eval_key"],
              "eval": evaluations.get_eval_config(info["eval_key"]),
              "zoos": {"plain": info["zoo_id"], "l2": info["l2_zoo_id"]},
              "groups": [{"pair": 0, "leaves": 4, "leaf_ids": info["leaf_ids"], "trees": trees}],
              "tree_ids": list(trees.values())}
    exp = experiments.create_experiment("tiny", "demo", "fashion_mnist", {"preset": "demo"}, key="tiny-exp")
    experiments.update_experiment(exp, status="done", result={"experiment_id": exp, **result})
    return exp


def _open(at: AppTest, experiment_id: int, title: str) -> AppTest:
    at.session_state[f"report-tab-{experiment_id}"] = title
    return _ok(at.run())


def test_finished_experiment_shows_sections_lazily(finished_experiment):
    from backend.report import build_report

    exp = finished_experiment
    at = _report_page()
    assert f"experiment {exp} (tiny)" in _texts(at.subheader)
    labels = [t.label for t in at.tabs]
    assert labels[:3] == ["Setup", "Accuracy per level", "Hierarchical vs MergeMany"]
    assert "Robustness: FGSM ε (L∞)" in labels and labels[-1] == "Trends over levels"
    assert not at.get("vega_lite_chart"), "only the open tab (Setup: text) is built"
    assert "Dataset **fashion_mnist**, preset **demo**" in _texts(at.caption)

    at = _open(at, exp, "Accuracy per level")
    (chart,) = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["title"] == "Accuracy per level"
    assert {"name": "pick", "select": {"type": "point", "fields": ["series"]}, "bind": "legend"} in \
        spec["layer"][1]["params"]  # legend click isolates a series, as on Compare
    shown = at.dataframe[0].value
    expected = {n: t for s in build_report(exp).sections for n, t in s.tables.items()}["accuracy_per_level"]
    assert list(shown["series"]) == list(expected["series"]) and list(shown["level"]) == list(expected["level"])
    assert list(shown["mean"]) == pytest.approx(list(expected["mean"]), abs=1e-12)
    assert list(shown["ci_lo"]) == pytest.approx(list(expected["ci_lo"]), abs=1e-12)
    assert {"hierarchical · 4 leaves", "MergeMany · 4 leaves"} <= set(shown["series"])
    figures = {b.proto.id: b for b in at.download_button if b.label in ("SVG", "PNG", "PDF")}
    assert [b.label for b in figures.values()] == ["SVG", "PNG", "PDF"]  # every chart downloads, as on Compare

    at = _open(at, exp, "Hierarchical vs MergeMany")
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert "facet" in spec and spec["title"] == "Hierarchical root vs MergeMany"
    assert [b.label for b in at.download_button if b.label in ("SVG", "PNG", "PDF")] == ["SVG", "PNG", "PDF"]
    from backend.figures import figure_bytes

    section = {s.title: s for s in build_report(exp).sections}["Hierarchical vs MergeMany"]
    assert figure_bytes(section.chart, "svg").startswith(b"<svg")  # panels keep their own widths
    assert figure_bytes(section.chart, "pdf")[:4] == b"%PDF"
    assert [e.label for e in at.expander][:2] == ["root_vs_merge_many", "paired_differences"]
    assert set(at.dataframe[0].value["method"]) == {"hierarchical", "MergeMany", "naive average"}
    paired = at.dataframe[1].value.set_index("metric")
    assert paired.loc["accuracy", "n"] == 1 and paired.loc["accuracy", "mean_diff"] == pytest.approx(
        paired.loc["accuracy", "mean_a"] - paired.loc["accuracy", "mean_b"])
    at = _open(at, exp, "Trends over levels")
    assert not at.get("vega_lite_chart") and "slope" in at.dataframe[0].value.columns
    at = _open(at, exp, "Robustness: FGSM ε (L∞)")
    params = json.loads(at.get("vega_lite_chart")[0].proto.spec)["layer"][1]["params"]
    assert [(p["name"], p["bind"]) for p in params] == [("pick", "legend"), ("zoom", "scales")]  # zoom and pan on ε


def test_report_file_offered_and_rebuilt(finished_experiment):
    from store import experiments

    exp = finished_experiment
    at = _report_page()
    labels = [b.label for b in at.download_button]
    assert "⬇ Report (.zip: Markdown + figures)" in labels and "⬇ Report (.html)" in labels  # built on click
    at.button(key="report-rebuild").click()
    _ok(at.run())
    path = Path(experiments.get_experiment(exp)["report_path"])
    text = path.read_text()
    assert text.startswith("# Hierarchical Re-Basin study") and "data:image" not in text
    figures = sorted((path.parent / f"{path.stem}-figures").glob("*.png"))
    assert len(figures) >= 6 and text.count(f"]({path.stem}-figures/") == len(figures)
    assert f"Report written to {path}" in _texts(at.success)
    at = _ok(at.run())
    assert "⬇ Report (.zip: Markdown + figures)" in [b.label for b in at.download_button]


def test_home_links_a_finished_experiment_to_its_report(finished_experiment):
    at = _ok(AppTest.from_file(HOME, default_timeout=AT_TIMEOUT).run())
    links = {link.proto.label: link.proto.query_string for link in at.get("page_link")}
    label = next(k for k in links if k.startswith(f"#{finished_experiment} "))
    assert links[label] == f"experiment={finished_experiment}"
    at.query_params["experiment"] = str(finished_experiment)
    _ok(at.switch_page("views/report.py").run())
    assert at.selectbox(key="report_experiment").value == finished_experiment
