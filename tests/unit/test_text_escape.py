"""User text is data, never markup: Markdown escaping (checked by an independent CommonMark renderer)
and the CSV formula guard, in the helpers and in the table exports."""

from __future__ import annotations

import html
import io
import re

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from backend.export import export_bytes
from backend.text import csv_safe, escape_markdown

CRAFTED = [
    "x ![p](http://host/pixel.png)",
    "**bold** _it_ `code` ~~gone~~",
    "[click](javascript:alert(1)) <img src=x onerror=alert(1)> &amp;",
    "$\\frac{1}{2}$ :red[colour] :material/home: # not a heading",
    "1. not a list | a | pipe \\ backslash",
    "- item\n+ other\nnext line",
    "<script>alert('x')</script>",
]
MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")


def _rendered_text(markdown: str) -> str:
    """The HTML a CommonMark renderer makes of one paragraph, with the <p> wrapper removed."""
    out = MD.render(markdown).strip()
    assert out.startswith("<p>") and out.endswith("</p>"), out
    return out[3:-4]


@pytest.mark.parametrize("text", CRAFTED)
def test_escaped_text_renders_as_exactly_that_text(text):
    flat = " ".join(text.split())
    assert _rendered_text(escape_markdown(text)) == html.escape(flat, quote=False)
    assert _rendered_text("name: " + escape_markdown(text, inline=True)) == "name: " + html.escape(flat, quote=False)


def test_inline_escaping_keeps_numbers_readable():
    assert escape_markdown("-0.5", inline=True) == "-0.5"
    assert escape_markdown("128-64", inline=True) == "128-64"


def test_markdown_export_cells_are_text():
    df = pd.DataFrame({"zoo_name": CRAFTED, "accuracy": [0.5] * len(CRAFTED)})
    out = MD.render(export_bytes(df, "markdown").decode())
    assert "<img" not in out and "<a " not in out and "<strong>" not in out and "<script>" not in out
    assert out.count("<tr>") == len(CRAFTED) + 1, "a pipe in a name must not add or break columns"
    cells = [c.split("</td>")[0] for c in re.split(r"<td[^>]*>", out)[1:]][::2]  # <td style="text-align:…">
    assert cells == [html.escape(" ".join(t.split()), quote=False) for t in CRAFTED]


def test_csv_export_guards_formulas_but_not_numbers():
    names = ["=HYPERLINK(\"http://x\",\"a\")", "+1+2", "-3+4", "@SUM(A1)", "\tx", "plain", "a=b"]
    df = pd.DataFrame({"name": names, "value": [-1.5, 2.0, -3.0, 0.0, 1.0, 2.0, 3.0], "n": range(7)})
    back = pd.read_csv(io.BytesIO(export_bytes(df, "csv")), keep_default_na=False)
    assert list(back["name"]) == ["'" + n for n in names[:5]] + ["plain", "a=b"]
    assert list(back["value"]) == [-1.5, 2.0, -3.0, 0.0, 1.0, 2.0, 3.0]
    assert list(back["n"]) == list(range(7))
    assert csv_safe(-1) == -1 and csv_safe(None) is None
