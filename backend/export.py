"""Tables out of the lab: one function per direction (bytes for downloads, files for the CLI).

Formats are chosen so a researcher can paste them anywhere: CSV and Parquet for analysis, Markdown for
notes and READMEs, LaTeX (booktabs) for papers. Floats keep full precision in CSV/Parquet and are
rounded to 4 significant digits in the human formats.

Markdown and LaTeX are laid out by pandas (`DataFrame.to_markdown`, i.e. tabulate's pipe tables, and
`Styler.to_latex` with booktabs rules); what goes into their cells is decided here: every cell as text
(4 significant digits, missing values blank), escaped for the format, because table cells hold user names
(zoo, tree and group names are data: no links, images, HTML or broken columns in Markdown, no live LaTeX).
Styler refuses duplicate column names, which exported tables may have, so its columns are numbered and
relabelled with the escaped names.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from backend.text import csv_safe, escape_markdown
from store.files import atomic_write_bytes

FORMATS = ("csv", "parquet", "markdown", "latex")
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".md": "markdown", ".markdown": "markdown", ".tex": "latex"}
MIME_TYPES = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "markdown": "text/markdown",
    "latex": "application/x-latex",
}
FILE_SUFFIX = {"csv": ".csv", "parquet": ".parquet", "markdown": ".md", "latex": ".tex"}


def _cell(value) -> str:
    """One table cell as text: floats to 4 significant digits, missing values (None, NaN, NA, NaT) empty."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float | np.floating):
        return "" if value != value else f"{value:.4g}"
    return str(value)


def _human(df: pd.DataFrame) -> list[list[str]]:
    """Every cell as readable text (what Markdown and LaTeX show), row by row.

    Columns are read by position and every cell goes through _cell, so a text column holding None/NaN
    (pandas 3 `str` columns hold NaN floats for missing values) or duplicate column names cannot leak a
    non-string into the formatters.
    """
    columns = [[_cell(v) for v in df.iloc[:, i].tolist()] for i in range(df.shape[1])]
    return [list(row) for row in zip(*columns, strict=True)] if columns else [[] for _ in range(len(df))]


def _aligns(df: pd.DataFrame) -> list[str]:
    return ["right" if pd.api.types.is_numeric_dtype(df.iloc[:, i]) else "left" for i in range(df.shape[1])]


def _markdown(df: pd.DataFrame) -> str:
    def escape(text: str) -> str:  # names are data: no images, links, HTML or broken columns
        return escape_markdown(text, inline=True)

    cells = pd.DataFrame([[escape(v) for v in row] for row in _human(df)],
                         columns=[escape(str(c)) for c in df.columns], dtype=object)
    if df.shape[1] == 0:
        return ""
    return cells.to_markdown(index=False, tablefmt="pipe", disable_numparse=True, colalign=_aligns(df)) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "∞": r"$\infty$"}  # an infinite mean; LaTeX has no text glyph for it


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex(df: pd.DataFrame) -> str:
    cells = pd.DataFrame([[_latex_escape(v) for v in row] for row in _human(df)], columns=range(df.shape[1]),
                         dtype=object)
    styler = cells.style.hide(axis="index").relabel_index([_latex_escape(str(c)) for c in df.columns], axis=1)
    column_format = "".join("r" if a == "right" else "l" for a in _aligns(df))
    return styler.to_latex(hrules=True, column_format=column_format)


def _csv_guarded(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading `'`; numbers are untouched."""
    out = df.copy()
    for i in range(out.shape[1]):
        column = out.iloc[:, i]
        if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column)):
            out.isetitem(i, column.map(csv_safe).astype(object))
    return out


def export_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """Serialise a table (index dropped) to one of FORMATS."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    flat = df.reset_index(drop=True)
    if fmt == "csv":
        return _csv_guarded(flat).to_csv(index=False).encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        flat.to_parquet(buf, index=False)
        return buf.getvalue()
    if fmt == "markdown":
        return _markdown(flat).encode()
    return _latex(flat).encode()


def format_for_path(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"cannot tell the export format from {str(path)!r}; use one of {', '.join(SUFFIXES)}")
    return SUFFIXES[suffix]


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` to `path` (format from the suffix) atomically: temp file in the same folder, then replace."""
    path = Path(path)
    return atomic_write_bytes(path, export_bytes(df, format_for_path(path)))
