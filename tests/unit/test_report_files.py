"""Report files: the HTML renders the sections' Markdown; Markdown ships its figures as files (archive)."""

from __future__ import annotations

import io
import zipfile

import pandas as pd

from backend.report import Report, Section, render_html, render_markdown, report_archive, report_bytes

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
