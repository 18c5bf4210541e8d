"""Report files: the HTML renders the sections' Markdown; Markdown ships its figures as files (archive)."""

from __future__ import annotations

import io
import zipfile

import pandas as pd

from backend.report import Report, Section
from backend.report_files import render_html, render_markdown, report_archive, report_bytes

CHART = {"$schema": "https://vega.github.io/schema/vega-lite/v6.json", "width": 120, "height": 80,
         "data": {"values": [{"x": 0, "y": 1}, {"x": 1, "y": 2}]}, "mark": "line",
         "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}}}


def _report() -> Report:
    sections = [Section("Setup", "Dataset **fashion_mnist**, config `abc`. <script>alert(1)</script>"),
                Section("Accuracy per level", "Mean per level.", CHART, {"t": pd.DataFrame({"a": [1.0]})})]
    return Report({"id": 7, "name": "demo"}, sections)


def test_html_renders_markdown_and_escapes_raw_html():
    page = render_html(_report())
    assert "<strong>fashion_mnist</strong>" in page and "<code>abc</code>" in page
    assert "**fashion_mnist**" not in page and "<script>" not in page
    assert "data:image/png;base64," in page


def test_markdown_links_figure_files_and_the_archive_holds_them():
    figures: dict[str, bytes] = {}
    text = render_markdown(_report(), figures)
    assert list(figures) == ["02-accuracy-per-level.png"] and figures["02-accuracy-per-level.png"][:4] == b"\x89PNG"
    assert "![Accuracy per level](figures/02-accuracy-per-level.png)" in text and "data:image" not in text
    with zipfile.ZipFile(io.BytesIO(report_archive(_report(), "exp-7"))) as zf:
        names = set(zf.namelist())
        assert names == {"exp-7/exp-7.md", "exp-7/figures/02-accuracy-per-level.png"}
        assert "figures/02-accuracy-per-level.png" in zf.read("exp-7/exp-7.md").decode()
    assert report_bytes(_report(), "zip")[:2] == b"PK"


def test_one_colour_per_group_in_compare_and_the_report():
    from backend import charts
    from backend.colors import FIXED, colors_for

    labels = ["unmerged leaves"] + [f"hierarchical · level {k}" for k in range(1, 9)] + ["L1 zoo", "L2 zoo"]
    colours = colors_for(labels)
    assert len(set(colours)) == len(labels) == 11  # the demo's 11 FGSM series: no two share a colour
    assert colours[0] == FIXED["unmerged leaves"] and colours[-1] == FIXED["L2 zoo"]
    assert charts._colors(["hierarchical", "L2 zoo"])["range"] == [FIXED["hierarchical"], FIXED["L2 zoo"]]
    # the report's names for the same groups get the same colours
    assert colors_for(["MergeMany", "L2-regularised"]) == [FIXED["merge_many"], FIXED["L2 zoo"]]


def _vega_signals(spec: dict) -> set[str]:
    """The signals Vega (compiled by vl-convert, the same compiler as the page's) makes of a chart: a legend
    selection compiles to `pick` (plus its `pick_tuple`), a scales-bound interval to `zoom`."""
    import json

    import vl_convert as vlc

    from backend.figures import portable

    vega = vlc.vegalite_to_vega(json.dumps(portable(spec)))
    vega = vega if isinstance(vega, dict) else json.loads(vega)
    found: set[str] = set()

    def walk(node):
        for signal in node.get("signals", []):
            found.add(signal["name"])
        for mark in node.get("marks", []):
            walk(mark)

    walk(vega)
    return found


def test_report_charts_isolate_a_series_from_the_legend_and_zoom_on_numeric_axes():
    """The Report page's curve charts behave like Compare's: legend click isolates, numeric x axes zoom/pan."""
    from backend import report

    summary = pd.DataFrame({"series": ["a", "a", "b", "b"], "level": [0, 1, 0, 1], "param": [0.0, 0.1, 0.0, 0.1],
                            "mean": [0.8, 0.7, 0.6, 0.5], "std": 0.01, "ci_lo": [0.79, 0.69, 0.59, 0.49],
                            "ci_hi": [0.81, 0.71, 0.61, 0.51], "n": 3})
    curve = report._line_with_ci(summary, "param", "ε", "accuracy", "series", "FGSM", "Q")
    per_level = report._line_with_ci(summary, "level", "tree level", "accuracy", "series", "Accuracy", "O")
    line = curve["layer"][1]
    assert {p["name"]: p.get("bind") for p in line["params"]} == {"pick": "legend", "zoom": "scales"}
    assert all(layer["encoding"]["opacity"]["condition"]["param"] == "pick" for layer in curve["layer"])
    assert [p["name"] for p in per_level["layer"][1]["params"]] == ["pick"]  # levels are ordinal: no zoom
    assert {"pick", "zoom"} <= _vega_signals(curve) and "pick" in _vega_signals(per_level)
    assert "zoom" not in _vega_signals(per_level)
    from backend.report_bracket import _chart

    bracket = pd.DataFrame({"series": ["a", "a"], "param": [0.0, 0.1], "certified": [0.5, 0.2],
                            "attacked": [0.6, 0.4], "n": 2})
    assert {"pick", "zoom"} <= _vega_signals(_chart(bracket, "linf"))
