"""Home: what the lab does, what the store holds, and one-click preset experiments."""

from __future__ import annotations

import streamlit as st

from app.ui import reads
from app.ui.text import md
from app.ui.widgets import ESTIMATE_SOURCES, estimate_text, executor_input, start_job, stored_note
from backend.experiment import PRESETS, trees_text
from backend.jobs.spec import ExperimentSpec
from backend.leaves import widths_label
from store.jobs import JobStatus

st.title("Hierarchical Re-Basin Lab")
st.markdown(
    "Train zoos of small MLPs, merge them with **Git Re-Basin** — pairwise, level by level in a "
    "hierarchical tree, or all at once with **MergeMany** — and see how accuracy, adversarial and noise "
    "robustness, weight norms and Lipschitz bounds change **at every merge level**, against naive "
    "averaging and L1/L2-regularised or unmerged models. Everything runs as background jobs; results land "
    "in a local store and appear on **Compare** and **Tree view**."
)



def _counters() -> None:
    """The store's counts; refreshed every few seconds while a job runs or waits."""
    c = reads.counts()
    cols = st.columns(5)
    for col, (label, key) in zip(cols, [("Zoos", "zoos"), ("Models", "models"), ("Trees", "trees"),
                                         ("Evaluation rows", "evaluations"), ("Running jobs", "running_jobs")],
                                 strict=True):
        col.metric(label, int(c.get(key, 0)), border=True)


counters = st.container()  # filled at the end of the page: a preset started below already counts as active

st.subheader("Start with a preset")
details = {name: reads.preset_estimate_detail(name, plan.dataset) for name, plan in PRESETS.items()}
calibrated = all(d["calibrated"] for d in details.values())
sources = sorted({d["source"] for d in details.values()})
h1, h2 = st.columns([5, 1.2], vertical_alignment="center")
h1.caption("A preset trains a plain zoo plus L1- and L2-regularised reference zoos, builds hierarchical "
           "trees, MergeMany and naive averages over the same leaves, evaluates every model with one "
           "protocol and writes a report. Estimates are a figure and a range, "
           + "; ".join(ESTIMATE_SOURCES[s] for s in sources) + ". Every job refines them as it runs.")
if h2.button("Calibrate" if not calibrated else "Recalibrate", key="calibrate", icon=":material/speed:",
             help="Time a few training steps, forward passes and one assignment problem per preset "
                  "architecture here; estimates then use these rates (also: python -m backend experiment "
                  "--estimate).", width="stretch"):
    with st.spinner("Timing this machine…"):
        reads.calibrate(PRESETS, fresh=calibrated)
    st.rerun()

executor = executor_input("presets")  # where every preset below runs (shown only when Ray is installed)

DATASET_HELP = {"available": "on disk", "downloadable": "will be downloaded",
                "missing": "not on disk and no network: pick another dataset"}

for name, plan in PRESETS.items():
    with st.container(border=True):
        left, mid, right = st.columns([3, 2, 1.2], vertical_alignment="center")
        left.markdown(f"**{name}** — {plan.note}")
        status = reads.dataset_status(plan.dataset)
        left.caption(f"{plan.dataset} ({DATASET_HELP[status]}) · widths {widths_label(plan.widths)} · "
                     f"{plan.epochs} epoch(s) · {plan.n_trained} models trained · {trees_text(plan.trees)} leaves")
        label = {"measured": "Estimated time here (measured)", "partly measured": "Estimated time here",
                 "calibrated": "Estimated time here (calibrated)"}.get(details[name]["source"],
                                                                      "Estimated time (default rates)")
        mid.metric(label, estimate_text(details[name], stored=False), label_visibility="visible")
        if note := stored_note(details[name]):  # why the estimate is short: a rerun recomputes nothing stored
            mid.caption(f"{note}: not recomputed.")
        if right.button(f"Start {name}", key=f"start-{name}", type="primary" if name == "demo" else "secondary",
                        disabled=status == "missing", width="stretch"):
            with st.container():
                start_job(ExperimentSpec(preset=name, dataset=plan.dataset), f"{name} experiment", executor)

done = reads.experiments()
done = done[done["status"] == JobStatus.DONE].head(5) if not done.empty else done
if not done.empty:
    st.subheader("Finished experiments")
    for exp in done.itertuples():
        st.page_link("views/report.py", label=f"#{exp.id} · {md(exp.name)} — open its report",
                     icon=":material/description:", query_params={"experiment": str(exp.id)})

st.subheader("Or step by step")
steps = st.columns(4)
steps[0].page_link("views/zoo.py", label="1 · Train a zoo", icon=":material/science:")
steps[1].page_link("views/merge_builder.py", label="2 · Build merges", icon=":material/account_tree:")
steps[2].page_link("views/runs.py", label="3 · Watch the runs", icon=":material/timer:")
steps[3].page_link("views/compare.py", label="4 · Compare levels", icon=":material/bar_chart:")

with counters:
    active = reads.counts()
    st.fragment(_counters, run_every=3.0 if active.get("running_jobs", 0) + active.get("queued_jobs", 0) else None)()
