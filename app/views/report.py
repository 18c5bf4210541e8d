"""Report: the study's figures and tables for one experiment, and the presets that start one.

Fast on a big store: the experiment's rows are read once per store change (cached study), each section
is a lazy tab built only when opened (cached per section), and report files are made only on click.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.ui import reads, widgets
from app.ui.text import md
from backend.data import DATASETS
from backend.experiment import PRESETS
from backend.figures import slug
from store.jobs import JobStatus
from store.paths import home_dir

DATASET_TITLES = {"cifar10": "CIFAR-10", "fashion_mnist": "Fashion-MNIST", "mnist": "MNIST"}


@st.cache_data(ttl=5, show_spinner=False)
def _experiments(home: str):
    from store import experiments as store_exps

    return store_exps.list_experiments()


@st.cache_resource(ttl=600, max_entries=2, show_spinner="Reading the experiment's results…")
def _study(home: str, experiment_id: int, marker: str):
    """The experiment's tagged rows, shared read-only by every section (a resource: never copied, never
    modified). `marker` changes whenever the experiment or the store's evaluation rows change."""
    from backend.report import load_study

    return load_study(experiment_id)


@st.cache_data(ttl=600, show_spinner=False)
def _outline(home: str, experiment_id: int, marker: str) -> tuple[str, list[str]]:
    from backend.report import report_title, section_titles

    study = _study(home, experiment_id, marker)
    return report_title(study.experiment), section_titles(study)


@st.cache_data(ttl=600, max_entries=64, show_spinner="Computing the section…")
def _section(home: str, experiment_id: int, marker: str, title: str):
    from backend.report import build_section

    return build_section(_study(home, experiment_id, marker), title)


def _report_bytes(experiment_id: int, fmt: str) -> bytes:
    """The whole report as one file, built from the store when a download button is clicked."""
    from backend.report import build_report
    from backend.report_files import report_bytes

    return report_bytes(build_report(experiment_id), fmt)


def start_form() -> None:
    """Preset picker with honest estimates, dataset picker (only what this machine can load), start."""
    with st.container(border=True):  # no st.form: the estimate follows the preset and dataset as they change
        usable = [d for d in DATASETS if reads.dataset_status(d) != "missing"]
        if not usable:
            st.error("No dataset is available: install Debian's dataset-fashion-mnist or go online for CIFAR-10.")
            st.button("Start experiment", disabled=True, key="report-start")
            return
        preset = st.radio("Preset", list(PRESETS), horizontal=True, key="report_preset",
                          help="Bigger presets give tighter confidence intervals.")
        default = PRESETS[preset].dataset if PRESETS[preset].dataset in usable else usable[0]
        dataset = st.selectbox("Dataset", usable, index=usable.index(default), key=f"report_dataset_{preset}",
                               format_func=lambda d: f"{DATASET_TITLES[d]} ({reads.dataset_status(d)})")
        plan = PRESETS[preset]
        try:
            est = reads.preset_estimate_detail(preset, dataset)
            st.caption(f"**{preset}**: {plan.note}. {plan.n_trained} models to train; estimate "
                       f"{widgets.estimate_text(est)}, {widgets.ESTIMATE_SOURCES[est['source']]}.")
        except Exception as err:  # noqa: BLE001 - an estimate must never break the page
            st.caption(f"**{preset}**: {plan.note}. (No estimate: {err})")
        submitted = st.button("Start experiment", type="primary", key="report-start")
    if submitted:
        from backend.jobs.spec import ExperimentSpec

        widgets.start_job(ExperimentSpec(preset=preset, dataset=dataset), f"{preset} experiment")


def downloads(experiment_id: int, report_path: str | None) -> None:
    """The report file the experiment wrote (or one built on click), HTML on click, and a rebuild."""
    saved = Path(report_path) if report_path else None
    saved = saved if saved is not None and saved.is_file() else None
    c1, c2, c3 = st.columns(3)
    name = saved.stem if saved is not None else f"experiment-{experiment_id}"
    c1.download_button("⬇ Report (.zip: Markdown + figures)", data=lambda: _report_bytes(experiment_id, "zip"),
                       file_name=f"{name}.zip", mime="application/zip", key="report-md", on_click="ignore",
                       width="stretch", help="The Markdown report with its figures as PNG files beside it.")
    c2.download_button("⬇ Report (.html)", data=lambda: _report_bytes(experiment_id, "html"),
                       file_name=f"experiment-{experiment_id}.html", mime="text/html", key="report-html",
                       on_click="ignore", width="stretch")
    if c3.button("Rebuild report file", key="report-rebuild", width="stretch",
                 help="Write the .md file (and its figure files) again from what the store holds now."):
        from backend.report_files import rebuild_report

        with st.spinner("Writing the report file…"):
            path = rebuild_report(experiment_id, saved)
        if saved is None:
            _experiments.clear()
        st.success(f"Report written to {path}")


def draw_section(section, experiment_id: int) -> None:
    st.caption(section.text)
    if section.chart is not None:
        faceted = "facet" in section.chart  # a faceted spec keeps its own panel widths
        widgets.chart_with_downloads(st, section.chart, f"experiment-{experiment_id}-{slug(section.title)}",
                                     key=f"fig-report-{slug(section.title)}", width="content" if faceted else "stretch")
    for name, table in section.tables.items():
        with st.expander(name):
            st.dataframe(table, hide_index=True)
            widgets.download_buttons(table, f"experiment-{experiment_id}-{name}", key=f"table-{name}")


def show(experiment_id: int, marker: str, report_path: str | None) -> None:
    home = str(home_dir())
    try:
        title, titles = _outline(home, experiment_id, marker)
    except ValueError as err:
        st.info(md(err))
        return
    st.subheader(md(title))
    downloads(experiment_id, report_path)
    tabs = st.tabs(titles, key=f"report-tab-{experiment_id}", on_change="rerun")
    for name, tab in zip(titles, tabs, strict=True):
        with tab:
            if tab.open:
                draw_section(_section(home, experiment_id, marker, name), experiment_id)


st.title("Report")
st.write("The hierarchical Re-Basin study in one click (Franke et al., arXiv 2510.09174): zoos, trees, "
         "MergeMany and averaging over the same leaves, L1/L2 references, every model evaluated.")
experiments = _experiments(str(home_dir()))
if experiments.empty:
    st.info("No experiment yet. Pick a preset below and start one; its report appears here when it is done.")
    start_form()
else:
    labels = {int(r.id): f"#{r.id} · {r.name} · {r.status}" for r in experiments.itertuples()}
    wanted = st.query_params.get("experiment")  # from Runs: "Report of experiment #N"
    if wanted and wanted.isdigit() and int(wanted) in labels and "report_experiment" not in st.session_state:
        st.session_state["report_experiment"] = int(wanted)
    chosen = st.selectbox("Experiment", list(labels), format_func=labels.get, key="report_experiment")
    row = experiments[experiments["id"] == chosen].iloc[0]
    if row["status"] != JobStatus.DONE:
        st.warning(f"Experiment #{chosen} is {md(row['status'])}; figures show what is stored so far.")
    report_path = row.get("report_path")
    report_path = str(report_path) if isinstance(report_path, str) and report_path else None
    marker = f"{row['status']}|{report_path}|{reads.counts()['evaluations']}"
    show(int(chosen), marker, report_path)
    with st.expander("Start another experiment"):
        start_form()
