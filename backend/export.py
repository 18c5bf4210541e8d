"""Tables out of the lab: one function per direction (bytes for downloads, files for the CLI).

Formats are chosen so a researcher can paste them anywhere: CSV and Parquet for analysis, Markdown for
notes and READMEs, LaTeX (booktabs) for papers. Floats keep full precision in CSV/Parquet and are
rounded to 4 significant digits in the human formats.

Markdown and LaTeX are written here, not by pandas: `DataFrame.to_markdown` (tabulate) pads every cell to
its column's width, and `Styler.to_latex` refuses duplicate column names (which exported tables may have) and
escapes ~, ^ and backslashes differently; the exact, compact output here is what tests/unit/test_queries_export.py pins.
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


def _markdown(df: pd.DataFrame) -> str:
    def escape(text: str) -> str:  # names are data: no images, links, HTML or broken columns
        return escape_markdown(text, inline=True)

    header = "| " + " | ".join(escape(str(c)) for c in df.columns) + " |"
    rule = "|" + "|".join(" --- " for _ in df.columns) + "|"
    rows = ["| " + " | ".join(escape(v) for v in row) + " |" for row in _human(df)]
    return "\n".join([header, rule, *rows]) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex(df: pd.DataFrame) -> str:
    align = "".join("r" if pd.api.types.is_numeric_dtype(df.iloc[:, i]) else "l" for i in range(df.shape[1]))
    lines = [f"\\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(_latex_escape(str(c)) for c in df.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_escape(v) for v in row) + r" \\" for row in _human(df)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


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
