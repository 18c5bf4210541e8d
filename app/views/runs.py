"""Runs: the live view of active jobs (progress, ETA, training curves) and a table of every job to find,
filter and act on (cancel, re-run, open results, read the log)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.ui import reads
from app.ui.text import md
from app.ui.widgets import LAST_JOB, estimate_text, stored_note
from backend import runs
from backend.charts import training_chart
from backend.jobs import queue
from backend.jobs.runner import log_path
from store import jobs as store_jobs
from store import train_curves as store_curves
from store.db import StoreBusy
from store.jobs import ACTIVE_STATUSES as ACTIVE
from store.jobs import JobStatus

BADGE_COLOR = {JobStatus.QUEUED: "gray", JobStatus.RUNNING: "blue", JobStatus.DONE: "green", JobStatus.FAILED: "red",
               JobStatus.CANCELLED: "orange"}
POLL_SECONDS = 2.0
LOG_LINES = 200

st.title("Runs")
st.caption("Every job runs in its own worker process. Active jobs update live below; the table lists every job: "
           "sort by a column header, filter, search, and select rows to act on them.")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def _live_curves(job_id: int) -> None:
    points = store_curves.curves(job_id=job_id)
    if points.empty:
        return
    cols = st.columns(2)
    for col, metric in zip(cols, ("loss", "acc"), strict=True):
        col.vega_lite_chart(spec=training_chart(points, metric, band=False), width="stretch")


def _active_card(job) -> None:
    job_id = int(job["id"])
    with st.container(border=True):
        head, badge, right = st.columns([6, 1, 1], vertical_alignment="center")
        row = runs.spec_columns(job["kind"], runs._json(job["spec"]))
        head.markdown(f"**#{job_id} · {runs.KIND_TITLES.get(job['kind'], job['kind'])} · {md(row.get('name') or '')}**")
        badge.badge(job["status"], color=BADGE_COLOR.get(job["status"], "gray"))
        if right.button("Cancel", key=f"cancel-{job_id}", disabled=bool(job["cancel_requested"])):
            queue.cancel(job_id, wait=False)
            reads.clear()
            st.rerun()
        progress = min(max(float(job["progress"] or 0.0), 0.0), 1.0)
        stage = job["message"] or job["stage"] or "starting"
        st.progress(progress, text=f"{progress:.0%} · {md(stage)}")
        elapsed = runs.duration_seconds(job["started_at"])
        est = reads.job_estimate(job_id, job["kind"], job["spec"], job["started_at"])
        eta = runs.eta_seconds(elapsed, progress, None if est is None else est["seconds"])
        parts = [f"elapsed {_clock(elapsed)}", f"ETA {_clock(eta) if eta is not None else 'unknown'}"]
        if est is not None:
            parts.append(f"estimated {estimate_text(est, stored=False)} in all")
            if stored_note(est):
                parts.append(stored_note(est))
        if job["cancel_requested"]:
            parts.append("cancel requested")
        st.caption(" · ".join(parts))
        if job["kind"] in ("train", "experiment"):
            _live_curves(job_id)


def _draw_active() -> None:
    try:
        queue.reap()  # a worker that died leaves a running row; mark it failed before drawing
        active = store_jobs.list_jobs(status=ACTIVE, limit=50)
    except StoreBusy as err:  # polled again in POLL_SECONDS
        st.warning(f"Store busy, retrying… ({md(err)})", icon=":material/hourglass_top:")
        return
    if active.empty:
        st.caption("No job is running.")
        if st.session_state.get("runs_polling"):
            st.session_state["runs_polling"] = False
            reads.clear()
            st.rerun()  # stop polling: redraw the page with a fragment that does not refresh
        return
    st.markdown(f"**{len(active)} active**")
    for _, job in active.iterrows():
        _active_card(job)


def _targets_links(table: pd.DataFrame) -> None:
    """Compare / Tree view / Report / Zoo links for the finished jobs among the selected rows."""
    trees, zoos, evals, experiments = [], [], [], []
    if any(r.get("curve_key") and r.get("pairs") for r in table["result"]):
        st.page_link("views/connectivity.py", label="Open Connectivity", icon=":material/timeline:")
    for result in table["result"]:
        t = runs.result_targets(result)
        trees += [x for x in t["trees"] if x not in trees]
        zoos += [x for x in t["zoos"] if x not in zoos]
        evals += [t["eval"]] if t["eval"] else []
        experiments += [t["experiment"]] if t["experiment"] is not None else []
    cols = st.columns(4)
    params = {}
    if trees:
        params["trees"] = ",".join(map(str, trees))
    if zoos:
        params["zoos"] = ",".join(map(str, zoos))
    if evals:
        params["eval"] = evals[0]
    if params:
        cols[0].page_link("views/compare.py", label="Compare results", icon=":material/bar_chart:",
                          query_params=params)
    if trees:
        cols[1].page_link("views/tree_view.py", label=f"Open tree #{trees[0]}", icon=":material/search:",
                          query_params={"tree": str(trees[0])})
    if experiments:
        cols[2].page_link("views/report.py", label=f"Report of experiment #{experiments[0]}",
                          icon=":material/description:", query_params={"experiment": str(experiments[0])})
    if zoos:
        cols[3].page_link("views/zoo.py", label=f"Zoo #{zoos[0]} models", icon=":material/science:",
                          query_params={"zoos": ",".join(map(str, zoos))})


def _show_log(job_id: int) -> None:
    path = log_path(job_id, create=False)
    if not path.exists() or path.stat().st_size == 0:
        st.caption(f"Job #{job_id} wrote no log (`{path}`).")
        return
    lines = path.read_text(errors="replace").splitlines()
    st.caption(f"Last {min(len(lines), LOG_LINES)} of {len(lines)} lines of `{path}`")
    st.code("\n".join(lines[-LOG_LINES:]), language="text")


def _selected_actions(selected: pd.DataFrame) -> None:
    ids = [int(i) for i in selected["id"]]
    st.markdown(f"**Selected: {', '.join(f'#{i}' for i in ids)}**")
    active = selected[selected["status"].isin(ACTIVE)]
    c1, c2, c3 = st.columns(3)
    if c1.button(f"Cancel {len(active)} active", key="runs-cancel", disabled=active.empty, icon=":material/stop:"):
        for job_id in active["id"]:
            queue.cancel(int(job_id), wait=False)
        reads.clear()
        st.rerun()
    if c2.button(f"Re-run {len(ids)}", key="runs-rerun", icon=":material/replay:",
                 help="Start each selected job again with the same spec; finished steps are cache hits."):
        from backend.jobs.spec import executor_settings, spec_from_dict

        started = []
        for spec in selected["spec"]:
            try:
                started.append(queue.submit(spec_from_dict(spec), executor_settings(spec)))
            except (ValueError, RuntimeError) as err:  # RuntimeError: executors.ExecutorError (cluster gone)
                st.error(f"Could not re-run: {md(err)}")
        if started:
            st.session_state[LAST_JOB] = started[-1]
            st.session_state["runs_polling"] = True
            reads.clear()
            st.success(f"Started job(s) {', '.join(f'#{j}' for j in started)}.")
    show_log = c3.toggle("Show log", key="runs-log")
    for _, row in selected.iterrows():
        error = row["error"] if isinstance(row["error"], str) and row["error"] else None  # NULL: None/NaN
        if row["status"] == JobStatus.FAILED:
            st.error(f"#{int(row['id'])}: {md(error) if error else 'the worker stopped without saying why'}")
        elif row["status"] == JobStatus.CANCELLED:
            st.warning(f"#{int(row['id'])}: {md(error) if error else 'cancelled'}")
    done = selected[selected["status"] == JobStatus.DONE]
    for _, row in done.iterrows():
        hits = row["cache_hits"]
        if hits is not None and not pd.isna(hits) and int(hits) > 0:
            st.caption(f"#{int(row['id'])}: {int(hits)} item(s) (models, trees or evaluations) were already stored "
                       "and not recomputed (cache hits).")
    if not done.empty:
        _targets_links(done)
    for _, row in selected.iterrows():
        if row["job_kind"] in ("train", "experiment") and row["status"] not in ACTIVE:
            points = store_curves.curves(job_id=int(row["id"]))
            if not points.empty:
                st.markdown(f"Training curves of job #{int(row['id'])}")
                cols = st.columns(2)
                for col, metric in zip(cols, ("loss", "acc"), strict=True):
                    col.vega_lite_chart(spec=training_chart(points, metric), width="stretch")
    if show_log:
        for job_id in ids:
            _show_log(job_id)


def _draw_table() -> None:
    models = reads.models_table()
    info = {int(m): (d, w) for m, d, w in zip(models["model_id"], models["dataset"], models["widths"], strict=True)}
    table = runs.runs_table(store_jobs.list_jobs(limit=10_000), info)
    if table.empty:
        st.info("No jobs yet. Start a preset on Home, train a zoo, or build a merge.")
        return
    st.subheader("All runs")
    f1, f2, f3 = st.columns([2, 2, 3])
    statuses = f1.multiselect("Status", store_jobs.JOB_STATUSES, key="runs-status")
    kinds = f2.multiselect("Kind", list(runs.KIND_TITLES.values()), key="runs-kind")
    search = f3.text_input("Search", key="runs-search", placeholder="name, dataset, widths, method, #id…")
    view = runs.filter_runs(table, statuses=statuses, kinds=kinds, search=search)
    counts = table["status"].value_counts()
    st.caption(f"{len(view)} of {len(table)} jobs shown · "
               + " · ".join(f"{int(counts.get(s, 0))} {s}" for s in store_jobs.JOB_STATUSES if counts.get(s, 0)))
    wanted = {int(j) for j in st.query_params.get("jobs", "").split(",") if j.strip().isdigit()}
    preselect = [i for i, job_id in enumerate(view["id"]) if int(job_id) in wanted]
    shown = view.assign(duration=view["duration_s"].map(lambda s: None if s is None or pd.isna(s) else _clock(s)))
    event = st.dataframe(
        shown, key="runs-table", on_select="rerun", selection_mode="multi-row", hide_index=True,
        selection_default={"selection": {"rows": preselect}} if preselect else None,
        placeholder="",
        column_order=["id", "kind", "name", "status", "progress", "dataset", "widths", "epochs", "n_models",
                      "methods", "lam", "pairing", "leaves", "eval_config", "started", "duration", "cache_hits",
                      "executor", "error"],
        column_config={
            "id": st.column_config.NumberColumn("job", format="#%d"),
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
            "n_models": st.column_config.NumberColumn("models"),
            "lam": st.column_config.NumberColumn("λ", format="%.2f"),
            "eval_config": st.column_config.TextColumn("eval config"),
            "started": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "cache_hits": st.column_config.NumberColumn("cached", help="items found already stored, not recomputed"),
            "executor": st.column_config.TextColumn("ran on", help="local: the job's own process; ray: the Ray "
                                                    "cluster it used (nodes and resources)"),
            "error": st.column_config.TextColumn("error", width="medium")})
    rows = event.selection.rows if event is not None else []
    selected = view.iloc[[r for r in rows if r < len(view)]]
    if selected.empty:
        st.caption("Select rows (the boxes on the left) to cancel, re-run, open results or read the log.")
        return
    _selected_actions(selected)


try:
    active_now = bool(store_jobs.list_jobs(status=ACTIVE, limit=1).shape[0])
except StoreBusy:  # the fragment below says so and polls until the store answers
    active_now = True
polling = st.session_state.get("runs_polling", False) or active_now
st.session_state["runs_polling"] = polling
if st.session_state.get(LAST_JOB):
    st.page_link("views/runs.py", label=f"Your last started job: #{st.session_state[LAST_JOB]}",
                 query_params={"jobs": str(st.session_state[LAST_JOB])}, icon=":material/arrow_forward:")
st.fragment(_draw_active, run_every=POLL_SECONDS if polling else None)()
try:
    _draw_table()
except StoreBusy:  # the active-jobs fragment above already says so and polls
    pass
