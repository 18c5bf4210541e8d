"""User text (zoo, experiment and job names, error messages) made inert wherever it is shown or exported.

A name is data, never markup: rendered through Markdown it must not fetch an image, become a link, bold,
LaTeX or raw HTML; written to a CSV it must not become a spreadsheet formula.
"""

from __future__ import annotations

import re

# Backslash-escapable ASCII punctuation that is markup anywhere in a line (CommonMark, GFM tables and
# strikethrough, Streamlit's `$` LaTeX). `<`, `>`, `&` become HTML entities instead. Characters that mean
# something only at the start of a line (`# - + =`, `1.`) are escaped only there, so `my-zoo` and
# `-0.5` inside a line stay readable in a .md file.
_MD_INLINE = re.compile(r"([\\`*_\[\]!|~$])")
_LINE_START = re.compile(r"^([#+\-=]|\d+(?=[.)]))")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_markdown(text: object, *, inline: bool = False) -> str:
    """`text` as Markdown that renders as exactly that text: specials escaped, HTML as entities, one line.

    inline=True: for text that never starts a line (a table cell of a .md export, a heading after its
    `# `): the line-start markers are left alone. (Streamlit's `:emoji:` shortcodes stay: they fetch nothing.)
    """
    flat = " ".join(str(text).split())
    flat = _MD_INLINE.sub(r"\\\1", "".join(_HTML.get(ch, ch) for ch in flat))
    if inline:
        return flat
    match = _LINE_START.match(flat)
    if match and match.group(1)[0].isdigit():  # "1." / "1)" would start an ordered list
        end = match.end()
        return flat[:end] + "\\" + flat[end:]
    return _LINE_START.sub(r"\\\1", flat, count=1)


def csv_safe(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula (= + - @ tab CR first) gets a leading `'`."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
