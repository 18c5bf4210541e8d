"""The whole path a first-time user takes, in a real browser against `streamlit run app/Home.py`:
train a tiny Fashion-MNIST zoo from the Zoo form, merge + evaluate it from the Merge builder, watch both
jobs finish on Runs, open Compare from the finished job, see the charts, download the CSV table.
Screenshots of every page go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.realdata, pytest.mark.slow, pytest.mark.timeout(900)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, lab_home):
    port = _free_port()
    env = {**os.environ, "REBASIN_HOME": str(lab_home), "REBASIN_DATA": str(tmp_path / "data"),
           "PYTHONPATH": str(ROOT)}
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "Home.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + (tmp_path / "streamlit.log").read_text()[-2000:])
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    from store import jobs  # stop any worker the UI started that is still running

    for job_id in jobs.list_jobs(status=("queued", "running"))["id"]:
        from backend.jobs.queue import cancel

        cancel(int(job_id), grace=2)


def _settle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout)
    page.wait_for_timeout(500)


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _wait_jobs_done(page, n_done: int, timeout_s: float) -> None:
    """Wait until Runs says no job is running, then check (in the store the server uses) that n_done
    jobs are done and none failed."""
    from store import jobs

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        failed = jobs.list_jobs(status="failed")
        if not failed.empty:
            pytest.fail("a job failed: " + str(failed["error"].iloc[0]) + "\n" + page.inner_text("body")[-3000:])
        if page.get_by_text("No job is running.").count() and len(jobs.list_jobs(status="done")) >= n_done:
            return
        page.wait_for_timeout(2000)
    pytest.fail(f"jobs did not finish within {timeout_s} s:\n" + page.inner_text("body")[-3000:])


def _fill(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Tab")


def test_first_user_path(server, chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.goto(server)
        _settle(page, 120_000)
        page.get_by_text("Or step by step").wait_for(timeout=120_000)
        _settle(page)
        _shot(page, "01-home")

        # 1. train a tiny zoo from the form
        page.goto(f"{server}/zoo")
        _settle(page)
        _fill(page, "Zoo name", "e2e-zoo")
        _fill(page, "Hidden widths", "256, 128")
        # the whole split, so the job is still running when Runs opens even on an idle machine
        _fill(page, "Train subset (0 = whole split)", "0")
        _fill(page, "Epochs", "3")
        _shot(page, "02-zoo-form")
        page.get_by_role("button", name="Train zoo").click()
        page.get_by_text("Started zoo 'e2e-zoo'").wait_for(timeout=30_000)

        page.goto(f"{server}/runs")
        _settle(page)
        # follow the running job: its progress names the model and epoch, its live curves appear
        page.get_by_text(re.compile(r"model \d of 4 · epoch \d/3")).first.wait_for(timeout=120_000)
        page.get_by_text("Cancel", exact=True).first.wait_for()
        page.wait_for_selector(".vega-embed", timeout=120_000)  # the live loss/accuracy curves of the job
        assert page.get_by_text(re.compile(r"No job is running")).count() == 0, "the curve must be live"
        _shot(page, "03a-runs-live-curve")
        _wait_jobs_done(page, 1, 480)  # ~30 s on an idle 2-core machine; room for a loaded one
        _shot(page, "03-runs-zoo-done")

        # 2. merge + evaluate the zoo's 4 models (small evaluation so it fits the time budget)
        page.goto(f"{server}/merge")
        _settle(page)
        _shot(page, "04a-merge-builder-open")
        page.get_by_text("From a zoo").click()
        _settle(page)
        _fill(page, "Test subset (0 = whole test split)", "300")
        _settle(page)
        _fill(page, "DeepFool steps", "10")
        _settle(page)
        _fill(page, "Local Lipschitz points", "10")
        _settle(page)
        page.locator('[data-testid="stGraphVizChart"]').first.wait_for()
        _shot(page, "04-merge-builder")
        page.get_by_role("button", name="Start merge").click()
        page.get_by_text(re.compile(r"Started merge of 4 models")).wait_for(timeout=30_000)

        page.goto(f"{server}/runs")
        _settle(page)
        _wait_jobs_done(page, 2, 240)
        _shot(page, "05-runs-merge-done")

        # 3. Compare, from the finished merge job's link (select its row in the run table first)
        from store import jobs

        merge_job = int(jobs.list_jobs()["id"].max())
        page.goto(f"{server}/runs?jobs={merge_job}")
        _settle(page)
        page.get_by_role("link", name="Compare results").first.click()
        _settle(page, 120_000)
        page.wait_for_selector(".vega-embed canvas, .vega-embed svg", timeout=60_000)
        # the charts arrive one by one (each with its file downloads): wait for the fourth, then count
        page.wait_for_function("document.querySelectorAll('.vega-embed').length >= 4", timeout=120_000)
        _settle(page, 60_000)
        n_charts = page.locator(".vega-embed").count()
        assert n_charts == 4, n_charts  # Overview tab: accuracy, FGSM curve, weight norm, global Lipschitz
        drawn = {c["title"]: set(c["labels"]) for c in _legends(page)}  # legends whole, inside their charts
        assert {"unmerged leaves", "hierarchical", "merge_many", "average"} <= drawn["Test accuracy per merge level"]
        assert "hierarchical · level 2" in drawn["FGSM robust accuracy vs ε"]  # the new tree is drawn
        _shot(page, "06-compare")
        body = page.inner_text("body")
        assert "hierarchical · 4 leaves · λ 0.5" in body  # the new tree is selected (label with λ, pairing)
        assert "in this evaluation config" not in body  # the link opened the job's config: nothing missing
        page.get_by_role("tab", name="Adversarial").click()  # lazy tab: its charts are built on opening
        _settle(page, 60_000)
        page.wait_for_function("document.querySelectorAll('.vega-embed').length >= 3", timeout=60_000)
        _shot(page, "06b-compare-adversarial")
        page.get_by_role("tab", name="Table").click()
        _settle(page, 60_000)
        page.get_by_role("button", name="CSV", exact=True).first.wait_for(timeout=60_000)  # the wide table
        page.get_by_text("Raw data: the long table").click()
        page.get_by_role("button", name="CSV", exact=True).last.wait_for(timeout=60_000)
        _shot(page, "06c-compare-table")
        with page.expect_download() as download:
            page.get_by_role("button", name="CSV", exact=True).last.click()
        table = pd.read_csv(io.BytesIO(Path(download.value.path()).read_bytes()))
        assert {"group", "level", "metric", "mean", "std", "n"} <= set(table.columns)
        assert {"hierarchical", "merge_many", "average"} <= set(table["group"])
        acc = table[(table["metric"] == "accuracy") & (table["group"] == "hierarchical")]
        assert sorted(acc["level"]) == [1, 2] and acc.sort_values("level")["n"].tolist() == [2, 1]
        assert acc["mean"].between(0.0, 1.0).all()
        leaves = table[(table["metric"] == "accuracy") & (table["group"] == "unmerged leaves")]  # one group
        assert leaves["level"].tolist() == [0] and leaves["n"].tolist() == [4]
        assert leaves["mean"].iloc[0] > 0.5  # leaves trained on real Fashion-MNIST: above chance

        # 4. Tree view and Report
        page.goto(f"{server}/tree")
        _settle(page)
        page.locator('[data-testid="stGraphVizChart"] svg').first.wait_for(timeout=30_000)
        _shot(page, "07-tree-view")

        # 5. Connectivity: the root's parents, every alignment with REPAIR, as a background job
        page.goto(f"{server}/connectivity")
        _settle(page)
        page.get_by_text("Compute curves").wait_for(timeout=30_000)
        _fill(page, "Test images (0 = the whole test split)", "500")
        _fill(page, "Images for activation matching / REPAIR", "1024")
        page.get_by_role("button", name="Compute").click()
        page.get_by_text(re.compile(r"Started interpolation as job")).wait_for(timeout=30_000)
        page.goto(f"{server}/runs")
        _settle(page)
        _wait_jobs_done(page, 3, 240)
        page.goto(f"{server}/connectivity")
        _settle(page, 60_000)
        page.wait_for_function("document.querySelectorAll('.vega-embed').length >= 2", timeout=60_000)
        _shot(page, "07b-connectivity")
        page.goto(f"{server}/zoo")
        _settle(page)
        _shot(page, "08-zoo-table")
        if (ROOT / "app" / "views" / "report.py").exists():
            page.goto(f"{server}/report")
            _settle(page)
            _shot(page, "09-report")
        browser.close()


# Every legend drawn inside its chart and its column, no label cut short (Vega's "…"), every series listed.
LEGEND_CHECK = """() => Array.from(document.querySelectorAll('.vega-embed')).map(embed => {
  const box = embed.getBoundingClientRect();
  const column = (embed.closest('[data-testid="stColumn"]') || embed.closest('[data-testid="stMain"]'))
    .getBoundingClientRect();
  const right = Math.min(box.right, column.right, document.documentElement.clientWidth) + 1;
  const out = [];
  embed.querySelectorAll('.role-legend').forEach(legend => {
    const r = legend.getBoundingClientRect();
    if (r.width && (r.left < box.left - 1 || r.right > right || r.bottom > box.bottom + 1)) {
      out.push(`legend ${Math.round(r.left)}..${Math.round(r.right)} outside ${Math.round(box.left)}..${Math.round(right)}`);
    }
  });
  const labels = Array.from(embed.querySelectorAll('.role-legend-label text')).map(t => {
    const lines = Array.from(t.querySelectorAll('tspan')).map(s => s.textContent);
    return lines.length ? lines.join(' · ') : t.textContent;  // a label broken into lines on a narrow plot
  });
  labels.filter(t => t.endsWith('…')).forEach(t => out.push(`label cut short: ${t}`));
  // the plot keeps its height: title, axes and legend never squash it (the y axis spans the plot)
  embed.querySelectorAll('g[aria-label^="Y-axis"]').forEach(axis => {
    const line = axis.querySelector('.role-axis-domain') || axis.querySelector('.role-axis-grid') || axis;
    const h = line.getBoundingClientRect().height;
    if (h < 150) out.push(`plot only ${Math.round(h)} px tall`);
  });
  const title = (embed.querySelector('.role-title-text') || {}).textContent || '';
  return {title, labels, problems: out, width: Math.round(box.width), height: Math.round(box.height)};
})"""


FADED_MARKS = """(index) => {
  const embed = document.querySelectorAll('.vega-embed')[index];
  return Array.from(embed.querySelectorAll('.role-mark path, .role-mark line'))
    .filter(el => parseFloat(el.getAttribute('opacity') ?? el.style.opacity ?? '1') < 0.5).length;
}"""


def _legend_click_isolates(page, index: int = 0) -> None:
    """Click a chart's first legend entry: the other series fade (their marks drawn at low opacity)."""
    assert page.evaluate(FADED_MARKS, index) == 0
    page.locator(".vega-embed").nth(index).locator(".role-legend-label text").first.click()
    page.wait_for_function(f"({FADED_MARKS})({index}) > 0", timeout=10_000)


def _legends(page) -> list[dict]:
    charts = page.evaluate(LEGEND_CHECK)
    problems = [f"{c['title']}: {p}" for c in charts for p in c["problems"]]
    assert not problems, problems
    return charts


def test_chart_legends_are_never_clipped(server, chromium_path):
    """Compare (curve charts with many series, a split, per-model lines) and the Report page on an awkward
    store: every legend lies inside its chart and column with every series named in full; screenshots of
    the charts themselves (not the page top) go to test-artifacts/screenshots/."""
    from playwright.sync_api import sync_playwright

    from tests.awkward_store import EVAL_KEY, add_reference_zoo, build_awkward_store, record_experiment

    info = build_awkward_store()
    l2 = add_reference_zoo("l2")
    experiment = record_experiment(info, l2)
    trees = ",".join(str(t) for t in info["trees"].values())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        for width in (1400, 1000):  # a laptop screen as well as the wide one
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(server)  # the router runs first (a server's first run, if a deep link, skips it)
            page.get_by_text("Or step by step").wait_for(timeout=120_000)
            page.goto(f"{server}/compare?trees={trees}&zoos={info['zoo']},{l2}&eval={EVAL_KEY}&split=leaves&models=1")
            _settle(page, 120_000)
            page.wait_for_function("document.querySelectorAll('.vega-embed .role-legend').length >= 3",
                                   timeout=60_000)
            _shot(page, f"10a-compare-overview-{width}")
            charts = _legends(page)
            fgsm = next(c for c in charts if c["title"].startswith("FGSM robust accuracy"))
            assert {"unmerged leaves", "hierarchical · 4 leaves · level 1", "hierarchical · 3 leaves · level 2",
                    "merge_many · 4 leaves · level 2", "unmerged zoo", "L2 zoo"} <= set(fgsm["labels"]), fgsm
            chart = page.locator(".vega-embed").nth(charts.index(fgsm))
            chart.scroll_into_view_if_needed()
            SHOTS.mkdir(parents=True, exist_ok=True)
            chart.screenshot(path=str(SHOTS / f"10-compare-fgsm-legend-{width}.png"))
            page.get_by_role("tab", name="Adversarial").click()
            _settle(page, 60_000)
            page.wait_for_selector(".vega-embed .role-legend", timeout=60_000)
            _legends(page)
            _shot(page, f"10b-compare-adversarial-{width}")

            page.goto(f"{server}/report?experiment={experiment}")
            _settle(page, 120_000)
            for tab in ("Accuracy per level", "Robustness: FGSM ε (L∞)"):
                page.get_by_role("tab", name=tab).click()
                _settle(page, 60_000)
                page.wait_for_selector(".vega-embed .role-legend", timeout=60_000)
                (report,) = _legends(page)
                assert len(report["labels"]) >= 2, report
                page.locator(".vega-embed").first.scroll_into_view_if_needed()
                _shot(page, f"11-report-{'accuracy' if tab.startswith('Acc') else 'fgsm'}-{width}")
                _legend_click_isolates(page)  # as on Compare: a legend click isolates a series
                _shot(page, f"11-report-{'accuracy' if tab.startswith('Acc') else 'fgsm'}-isolated-{width}")
            page.close()
        browser.close()
