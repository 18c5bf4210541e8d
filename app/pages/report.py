"""Report: the study's figures and tables for one experiment, and the presets that start one."""

from __future__ import annotations

import streamlit as st

from app.ui import reads, widgets
from backend.data import DATASETS
from backend.estimate import describe
from backend.experiment import PRESETS

DATASET_TITLES = {"cifar10": "CIFAR-10", "fashion_mnist": "Fashion-MNIST", "mnist": "MNIST"}


@st.cache_data(ttl=5, show_spinner=False)
def _experiments():
    from store import experiments as store_exps

    return store_exps.list_experiments()


@st.cache_data(ttl=60, show_spinner="Reading the experiment's results…")
def _report(experiment_id: int, created: str):
    """Sections of the report (cached per experiment and its last update)."""
    from backend.report import build_report

    return build_report(experiment_id)


@st.cache_data(ttl=600, show_spinner="Rendering the report file…")
def _report_file(experiment_id: int, created: str, fmt: str) -> bytes:
    from backend.report import build_report, report_bytes

    return report_bytes(build_report(experiment_id), fmt)


def start_form() -> None:
    """Preset picker with honest estimates, dataset picker (only what this machine can load), start."""
    with st.form("start-experiment"):
        usable = [d for d in DATASETS if reads.dataset_status(d) != "missing"]
        if not usable:
            st.error("No dataset is available: install Debian's dataset-fashion-mnist or go online for CIFAR-10.")
            st.form_submit_button("Start experiment", disabled=True)
            return
        preset = st.radio("Preset", list(PRESETS), horizontal=True,
                          format_func=lambda p: f"{p}", help="Bigger presets give tighter confidence intervals.")
        default = PRESETS[preset].dataset if PRESETS[preset].dataset in usable else usable[0]
        dataset = st.selectbox("Dataset", usable, index=usable.index(default),
                               format_func=lambda d: f"{DATASET_TITLES[d]} ({reads.dataset_status(d)})")
        submitted = st.form_submit_button("Start experiment", type="primary")
    plan = PRESETS[preset]
    try:
        seconds = reads.preset_estimate(preset, dataset)
        st.caption(f"**{preset}**: {plan.note}. {plan.n_trained} models to train; estimate "
                   f"{describe(seconds)} on this machine (measured rates; ±50 %).")
    except Exception as err:  # noqa: BLE001 - an estimate must never break the page
        st.caption(f"**{preset}**: {plan.note}. (No estimate: {err})")
    if submitted:
        from backend.jobs.spec import ExperimentSpec

        widgets.start_job(ExperimentSpec(preset=preset, dataset=dataset), f"{preset} experiment")


def show(experiment_id: int, created: str) -> None:
    try:
        report = _report(experiment_id, created)
    except ValueError as err:
        st.info(str(err))
        return
    st.subheader(report.title)
    cols = st.columns(2)
    for col, (fmt, suffix, mime) in zip(cols, (("markdown", ".md", "text/markdown"),
                                                ("html", ".html", "text/html")), strict=True):
        col.download_button(f"⬇ Whole report ({suffix[1:]})",
                            data=lambda fmt=fmt: _report_file(experiment_id, created, fmt),
                            file_name=f"experiment-{experiment_id}{suffix}", mime=mime,
                            key=f"report-{fmt}", on_click="ignore", width="stretch")
    for i, section in enumerate(report.sections):
        st.markdown(f"### {section.title}")
        st.caption(section.text)
        if section.chart is not None:
            st.altair_chart(section.chart, width="stretch")
        for name, table in section.tables.items():
            with st.expander(name):
                st.dataframe(table, hide_index=True)
                widgets.download_buttons(table, f"experiment-{experiment_id}-{name}", key=f"t{i}-{name}")


st.title("Report")
st.write("The hierarchical Re-Basin study in one click (Franke et al., arXiv 2510.09174): zoos, trees, "
         "MergeMany and averaging over the same leaves, L1/L2 references, every model evaluated.")
experiments = _experiments()
if experiments.empty:
    st.info("No experiment yet. Pick a preset below and start one; its report appears here when it is done.")
    start_form()
else:
    labels = {int(r.id): f"#{r.id} · {r.name} · {r.status}" for r in experiments.itertuples()}
    chosen = st.selectbox("Experiment", list(labels), format_func=labels.get)
    row = experiments[experiments["id"] == chosen].iloc[0]
    if row["status"] != "done":
        st.warning(f"Experiment #{chosen} is {row['status']}; figures show what is stored so far.")
    show(int(chosen), f"{row['status']}|{row.get('report_path')}")
    with st.expander("Start another experiment"):
        start_form()
