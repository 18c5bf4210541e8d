"""The report as files that work offline, built from backend.report's sections:
- `.md`:   Markdown with every figure as a PNG file in `<stem>-figures/` beside it (common renderers do not
           show base64 images) and tables as Markdown — diffable text;
- `.zip`:  the same Markdown and its figure files in one archive (the Report page's download);
- `.html`: one standalone page, its Markdown rendered, PNGs inline — opens in any browser, no CDN needed.
PNGs are rendered from the Vega-Lite specs by backend.figures (vl-convert: no browser, no network), which is
why we do not ship vega-embed HTML (it loads vega from a CDN and breaks offline).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from backend.figures import figure_bytes, figure_name
from backend.report import Report, build_report
from store.files import atomic_write_bytes


def default_report_path(experiment_id: int, suffix: str = ".md") -> Path:
    from store.paths import home_dir

    return home_dir() / "reports" / f"experiment-{experiment_id}{suffix}"


def chart_png(spec: dict, scale: float = 1.5) -> bytes:
    """A section's figure as PNG (backend.figures, the helper every chart download uses)."""
    return figure_bytes(spec, "png", scale=scale)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def render_markdown(report: Report, figures: dict[str, bytes] | None = None, *, folder: str = "figures") -> str:
    """The report as Markdown. With `figures` (a dict to fill), every chart is rendered to PNG, stored there
    under its file name and linked as `folder/NAME.png` (figures as files: common renderers do not show
    base64 images); without it, figures are embedded as data URIs (one self-contained file)."""
    from backend.export import export_bytes
    from backend.text import escape_markdown

    out = [f"# {escape_markdown(report.title, inline=True)}", ""]
    for i, s in enumerate(report.sections, start=1):
        out += [f"## {escape_markdown(s.title, inline=True)}", "", s.text, ""]
        if s.chart is not None:
            png = chart_png(s.chart)
            if figures is None:
                out += [f"![{s.title}]({_data_uri(png)})", ""]
            else:
                name = figure_name(i, s.title)
                figures[name] = png
                out += [f"![{s.title}]({folder}/{name})", ""]
        for name, table in s.tables.items():
            out += [f"**{name}**", "", export_bytes(table, "markdown").decode(), ""]
    return "\n".join(out)


def _markdown_html(text: str) -> str:
    """Section text (Markdown: **bold**, `code`) as HTML; raw HTML in the text is escaped, never passed on."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def render_html(report: Report) -> str:
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(report.title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
             "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}</style>",
             f"<h1>{html.escape(report.title)}</h1>"]
    for s in report.sections:
        parts += [f"<h2>{html.escape(s.title)}</h2>", _markdown_html(s.text)]
        if s.chart is not None:
            parts.append(f"<img alt='{html.escape(s.title)}' src='{_data_uri(chart_png(s.chart))}'>")
        for name, table in s.tables.items():
            parts += [f"<h4>{html.escape(name)}</h4>", table.to_html(index=False, float_format=lambda v: f"{v:.4g}")]
    return "\n".join(parts)


def report_archive(report: Report, stem: str = "report") -> bytes:
    """One .zip: `stem.md` with its figures as PNG files under `figures/` (what the Markdown links to)."""
    import io
    import zipfile

    figures: dict[str, bytes] = {}
    text = render_markdown(report, figures)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{stem}/{stem}.md", text)
        for name, png in figures.items():
            zf.writestr(f"{stem}/figures/{name}", png)
    return buf.getvalue()


def report_bytes(report: Report, fmt: str = "markdown") -> bytes:
    """markdown (one file, figures inline), html (one file, Markdown rendered) or zip (Markdown + figure files)."""
    if fmt not in ("markdown", "html", "zip"):
        raise ValueError(f"a report is written as markdown, html or zip, not {fmt!r}")
    if fmt == "zip":
        return report_archive(report)
    return (render_markdown(report) if fmt == "markdown" else render_html(report)).encode()


def write_report(experiment_id: int, path: str | Path | None = None) -> Path:
    """Write the report atomically; returns the path. From the suffix: .md = Markdown with its figures as PNG
    files in `<stem>-figures/` next to it; .html = one offline page; .zip = the Markdown and figures in one
    archive."""
    path = Path(path) if path is not None else default_report_path(experiment_id)
    suffix = path.suffix.lower()
    if suffix not in (".md", ".markdown", ".html", ".htm", ".zip"):
        raise ValueError(f"the report file must end in .md, .html or .zip, got {path.name!r}")
    report = build_report(experiment_id)
    if suffix.startswith(".htm"):
        return atomic_write_bytes(path, render_html(report).encode())
    if suffix == ".zip":
        return atomic_write_bytes(path, report_archive(report, path.stem))
    figures: dict[str, bytes] = {}
    folder = f"{path.stem}-figures"
    text = render_markdown(report, figures, folder=folder)
    for name, png in figures.items():  # figures first: the Markdown never links to a missing file
        atomic_write_bytes(path.parent / folder / name, png)
    return atomic_write_bytes(path, text.encode())


def rebuild_report(experiment_id: int, saved: str | Path | None = None) -> Path:
    """Write the experiment's report file again (at `saved`, or the default path, which is then recorded on
    the experiment): the Report page's write goes through here, never straight to the store."""
    path = write_report(experiment_id, saved or default_report_path(experiment_id))
    if saved is None:
        from store import experiments as store_exps

        store_exps.update_experiment(experiment_id, report_path=str(path))
    return path
