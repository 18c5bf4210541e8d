"""Every page renders on an empty and on a populated store; forms validate; starting a job records it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import AT_TIMEOUT

HOME = str(Path(__file__).resolve().parents[2] / "app" / "Home.py")
PAGES = ["views/home.py", "views/zoo.py", "views/merge_builder.py", "views/runs.py", "views/compare.py",
         "views/tree_view.py", "views/connectivity.py"]


def _app(page: str | None = None, query: dict | None = None, sidebar: str | None = None) -> AppTest:
    """Run the router (it lands on Home), check the sidebar's store status there, then switch to `page`.

    The sidebar is checked on the first run only: AppTest drops sidebar elements after switch_page.
    """
    at = AppTest.from_file(HOME, default_timeout=AT_TIMEOUT)
    if query:
        at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if sidebar is not None:
        assert sidebar in _texts(at.sidebar.caption)
    if page:
        at.switch_page(page).run()
    return at


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def _jobs():
    from store import jobs

    return jobs.list_jobs()


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_on_empty_store(page):
    at = _ok(_app(page, sidebar="0 zoos · 0 models"))
    if page != "views/home.py":
        assert at.info, f"{page} should explain what to do on an empty store"


def test_home_shows_presets_with_estimates_and_starts_demo(no_workers):
    at = _ok(_app())
    labels = [b.label for b in at.button]
    assert "Start demo" in labels and "Start paper" in labels
    assert any("about" in str(m.value) for m in at.metric), "each preset shows a time estimate"
    assert next(m for m in at.metric if m.label == "Running jobs").value == "0"
    at.button(key="start-demo").click().run()
    _ok(at)
    jobs = _jobs()
    assert list(jobs["kind"]) == ["experiment"] and no_workers == [int(jobs["id"].iloc[0])]
    assert json.loads(jobs["spec"].iloc[0])["preset"] == "demo"
    assert "Started demo experiment" in _texts(at.success)
    # the counters are drawn once the page acted (so is the sidebar, which AppTest drops on a rerun): the job
    # it just started already counts, and they refresh while it runs
    assert next(m for m in at.metric if m.label == "Running jobs").value == "1"


def test_home_estimates_never_time_the_machine(lab_home):
    """A render uses default rates (or a cached calibration) and writes no calibration; the button offers it."""
    from backend.estimate import machine

    machine._MEMO.clear()
    at = _ok(_app())
    assert not (Path(lab_home) / "calibration.json").exists()
    assert all(m.label == "Estimated time (default rates)" for m in at.metric if "Estimated" in m.label)
    assert at.button(key="calibrate").label == "Calibrate"


@pytest.mark.parametrize("page", PAGES)
def test_pages_render_on_populated_store(populated_store, page):
    at = _ok(_app(page, sidebar=f"{populated_store['n_models']} models"))
    if page not in ("views/runs.py", "views/merge_builder.py"):  # those show a failed job / a validation hint
        assert not at.error, _texts(at.error)


def test_zoo_table_lists_models_and_selection_feeds_merge_builder(populated_store):
    at = _ok(_app("views/zoo.py"))
    table = at.dataframe[0].value
    assert len(table) == populated_store["n_models"]
    assert {"model_id", "accuracy", "kind", "zoo_kind", "level"} <= set(table.columns)
    assert table["accuracy"].notna().sum() >= 9  # every evaluated model shows its accuracy
    at.session_state["selected_model_ids"] = populated_store["leaf_ids"]
    at.switch_page("views/merge_builder.py").run()
    _ok(at)
    assert at.radio(key="leaf_source").value == "Selected on the Zoo page"
    assert not at.error and not at.button(key="start_merge").disabled
    assert at.get("graphviz_chart"), "the planned tree is drawn before starting"


def test_zoo_form_validation_messages(no_workers):
    at = _ok(_app("views/zoo.py"))
    at.text_input[1].set_value("128, abc")  # hidden widths
    at.button[0].click().run()  # the form's submit button
    _ok(at)
    assert "Hidden widths must be whole numbers" in _texts(at.error)
    at.text_input[1].set_value("16, 8")
    at.selectbox[2].set_value("l1")  # regularisation
    at.number_input[5].set_value(0.0)  # strength
    at.button[0].click().run()
    assert "needs a positive regularisation strength" in _texts(at.error)
    assert _jobs().empty and no_workers == []


def test_zoo_form_estimates_without_starting(no_workers):
    """"Estimate time" prices the zoo as the form stands (the same estimate a started job gets) and starts nothing."""
    from app.ui.reads import spec_estimate
    from backend.jobs.spec import TrainSpec

    at = _ok(_app("views/zoo.py"))
    at.text_input[1].set_value("16, 8")
    at.number_input[0].set_value(3)  # models
    at.button[1].click().run()  # Estimate time
    _ok(at)
    (caption,) = [c.value for c in at.caption if c.value.startswith("Estimated time here")]
    spec = TrainSpec(name="fmnist-small", n_models=3, train={"dataset": "fashion_mnist", "widths": [16, 8],
                                                             "epochs": 1, "train_subset": 12000})
    from app.ui.widgets import estimate_text

    assert estimate_text(spec_estimate(spec)) in caption
    assert _jobs().empty and no_workers == []


def test_zoo_form_starts_a_training_job(no_workers):
    at = _ok(_app("views/zoo.py"))
    at.text_input[0].set_value("my-zoo")
    at.text_input[1].set_value("16, 8")
    at.number_input[0].set_value(3)  # models
    at.number_input(key="train-curve_every").set_value(10)  # a curve point every 10 steps too
    at.button[0].click().run()
    _ok(at)
    jobs = _jobs()
    assert len(jobs) == 1 and jobs["kind"].iloc[0] == "train" and no_workers == [int(jobs["id"].iloc[0])]
    spec = json.loads(jobs["spec"].iloc[0])
    assert spec["name"] == "my-zoo" and spec["n_models"] == 3 and spec["train"]["widths"] == [16, 8]
    assert spec["curve_every"] == 10
    assert spec["train"]["dataset"] == "fashion_mnist" and spec["zoo_kind"] == "plain"
    assert "Started zoo 'my-zoo'" in _texts(at.success)


def test_merge_builder_explains_invalid_choices(populated_store, no_workers):
    at = _ok(_app("views/merge_builder.py"))
    at.radio(key="leaf_source").set_value("Type model ids").run()
    at.text_input(key="leaf_ids").set_value(str(populated_store["leaf_ids"][0])).run()
    assert "at least 2 models" in _texts(at.error) and at.button(key="start_merge").disabled
    odd = populated_store["odd_id"]
    at.text_input(key="leaf_ids").set_value(f"{populated_store['leaf_ids'][0]}, {odd}").run()
    errors = _texts(at.error)
    assert "different datasets" in errors and "different widths" in errors
    at.text_input(key="leaf_ids").set_value("1, 1, 999").run()
    assert "not in the store" in _texts(at.error) and "listed twice" in _texts(at.error)
    ids = ", ".join(map(str, populated_store["leaf_ids"]))
    at.text_input(key="leaf_ids").set_value(ids).run()
    at.radio(key="pairing_mode").set_value("custom pairs").run()
    assert not at.error and at.text_area(key="pairs-4").value == "0-1, 2-3\n0-1"  # the default is valid
    at.text_area(key="pairs-4").set_value("0-1, 2-3\n0-1-2").run()
    assert "joins more than two nodes" in _texts(at.error)
    at.text_area(key="pairs-4").set_value("0-5, 2-3\n0-1").run()
    assert "Tree:" in _texts(at.error) and at.button(key="start_merge").disabled
    at.text_input(key="leaf_ids").set_value(ids.rsplit(",", 1)[0]).run()  # 3 leaves: a new valid default
    assert not at.error and at.text_area(key="pairs-3").value == "0-1, 2\n0-1"
    at.text_input(key="merge_eval-fgsm_eps").set_value("0, x").run()
    at.text_input(key="merge_eval-noise_sigma").set_value("-1").run()
    errors = [e.value for e in at.error]
    assert any(e.startswith("The FGSM ε grid") for e in errors) and any(e.startswith("The noise σ grid") for e in errors)
    assert at.button(key="start_merge").disabled
    assert _jobs()["kind"].tolist() == ["train", "merge"] and no_workers == []  # only the fixture's jobs


def test_merge_builder_starts_a_merge_job(populated_store, no_workers):
    at = _ok(_app("views/merge_builder.py"))
    at.radio(key="leaf_source").set_value("From a zoo").run()
    at.selectbox(key="leaf_zoo").set_value(populated_store["zoo_id"]).run()
    at.radio(key="pairing_mode").set_value("random (seeded)").run()
    at.text_input(key="merge_eval-fgsm_eps").set_value("0, 0.01").run()
    assert not at.error, _texts(at.error)
    estimate = next(c.value for c in at.caption if c.value.startswith("Estimated time here: about"))
    assert "–" in estimate and "no job measured here yet" in estimate  # a range, from the one estimate source
    at.button(key="start_merge").click().run()
    _ok(at)
    merges = _jobs()[lambda d: d["kind"] == "merge"].sort_values("id")
    spec = json.loads(merges["spec"].iloc[-1])
    assert spec["model_ids"] == populated_store["leaf_ids"] and spec["pairing"] == "random"
    assert spec["methods"] == ["hierarchical", "merge_many", "average"]
    assert spec["evaluate"]["fgsm_eps"] == [0.0, 0.01] and spec["evaluate"]["subset"] == 1000
    assert no_workers == [int(merges["id"].iloc[-1])]


def _select_rows(at: AppTest, key: str, rows: list[int]) -> AppTest:
    """Select rows of an st.dataframe as a click on their boxes would."""
    at.session_state[key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    return _ok(at.run())


def test_runs_plots_a_running_zoo_every_n_steps(no_workers):
    """A zoo started with a curve point every N steps: Runs' live chart of the running job draws those points
    (one line per model), not only the finished epochs."""
    from backend.jobs.queue import submit
    from backend.jobs.spec import TrainSpec
    from store import train_curves

    train = {"dataset": "fashion_mnist", "widths": [16, 8], "epochs": 2, "train_subset": 1024, "batch_size": 128}
    job_id = submit(TrainSpec(name="stepped", train=train, n_models=2, curve_every=2))
    for seed in (0, 1):
        train_curves.add_points([(f"model-{seed}", step / 8, 2.0 - step / 10, 0.1 * step, None, seed, step)
                                 for step in (2, 4, 6, 8, 10)], job_id=job_id)
        train_curves.add_point(f"model-{seed}", 1, 1.5, 0.5, seed=seed, job_id=job_id)
    at = _ok(_app("views/runs.py"))
    specs = _specs(at)
    assert [s["title"]["text"] for s in specs] == ["Training loss", "Training accuracy"]
    assert all(s["title"]["subtitle"] == "every few training steps, one line per model" for s in specs)


def test_runs_shows_live_progress_and_a_table_to_filter_select_and_cancel(populated_store, no_workers):
    from backend.jobs.queue import submit
    from backend.jobs.spec import EvaluateSpec
    from store import jobs

    job_id = submit(EvaluateSpec(model_ids=(populated_store["root_id"],), eval={"subset": 100}))
    jobs.update_progress(job_id, 0.4, "fgsm", "model 2 of 5 · fgsm on 100 samples")
    at = _ok(_app("views/runs.py"))
    progress = at.get("progress")
    assert len(progress) == 1 and progress[0].proto.value == 40
    assert progress[0].proto.text == "40% · model 2 of 5 · fgsm on 100 samples"
    caption = next(c.value for c in at.caption if c.value.startswith("elapsed "))
    assert "ETA" in caption and "estimated about" in caption  # the job's estimate, before it measured a pace

    table = at.dataframe(key="runs-table").value
    assert list(table["id"]) == [job_id, populated_store["failed_job"], populated_store["done_job"]]
    assert {"kind", "name", "status", "dataset", "widths", "epochs", "methods", "eval_config", "started",
            "duration", "cache_hits"} <= set(table.columns)
    assert table.set_index("id").loc[populated_store["failed_job"], "dataset"] == "fashion_mnist"

    at.multiselect(key="runs-status").set_value(["failed"]).run()
    assert list(_ok(at).dataframe(key="runs-table").value["id"]) == [populated_store["failed_job"]]
    at.multiselect(key="runs-status").set_value([]).run()
    at.text_input(key="runs-search").set_value("hierarchical").run()
    assert list(_ok(at).dataframe(key="runs-table").value["id"]) == [populated_store["done_job"]]
    at.text_input(key="runs-search").set_value("").run()

    at = _select_rows(at, "runs-table", [1, 2])  # the failed and the done job
    assert "DatasetUnavailable: cifar10 is not on disk" in _texts(at.error)
    links = {link.proto.page: link.proto.query_string for link in at.get("page_link")}
    trees = [populated_store[k] for k in ("hier_tree", "mm_tree", "avg_tree")]
    assert links["compare"] == "trees=" + "%2C".join(map(str, trees))  # the done job links to its results
    assert links["tree"] == f"tree={trees[0]}"  # keyed by the router's url_path
    assert at.button(key="runs-cancel").disabled  # nothing active among them

    at = _select_rows(at, "runs-table", [0])  # the running job
    at.button(key="runs-cancel").click().run()
    _ok(at)
    assert jobs.get_job(job_id)["cancel_requested"]


def _specs(at: AppTest) -> list[dict]:
    """Each chart's Vega-Lite spec, with the names of the Arrow datasets it shipped under "datasets"."""
    return [{**json.loads(c.proto.spec), "datasets": [d.name for d in c.proto.datasets]}
            for c in at.get("vega_lite_chart")]


def _open_tab(at: AppTest, label: str) -> AppTest:
    at.session_state["cmp_tab"] = label
    return _ok(at.run())


def test_compare_draws_charts_and_table_for_one_eval_config(populated_store):
    at = _ok(_app("views/compare.py", query={"trees": f"{populated_store['hier_tree']},{populated_store['mm_tree']}",
                                             "zoos": str(populated_store["l2_zoo_id"])}))
    assert at.multiselect(key="cmp_trees").value == [populated_store["hier_tree"], populated_store["mm_tree"]]
    overview = _specs(at)  # only the open tab is built: accuracy, FGSM curve, weight norm, global Lipschitz
    by_title = {s["title"]["text"]: s for s in overview}
    assert set(by_title) == {"Test accuracy per merge level", "FGSM robust accuracy vs ε",
                             "Weight norm Σ‖W‖_F + ‖b‖₂ per merge level",
                             "Global Lipschitz bound Π‖W‖₂ per merge level"}
    acc = by_title["Test accuracy per merge level"]
    assert set(acc["datasets"]) >= {"merged", "zoos", "points"}  # datasets travel as Arrow, not in the spec
    assert "L2 zoo" in json.dumps(acc["layer"][1]["encoding"]["color"]["scale"]["domain"])
    curve = by_title["FGSM robust accuracy vs ε"]
    band, line = curve["layer"]
    assert band["mark"]["type"] == "area" and band["encoding"]["fill"]["legend"] is None
    assert line["encoding"]["color"]["legend"]["symbolOpacity"] == 1 and curve["padding"]["top"] >= 10
    domain = line["encoding"]["color"]["scale"]["domain"]
    assert domain[0] == "unmerged leaves" and "hierarchical · level 1" in domain and domain[-1] == "L2 zoo"
    assert "pixel units" in line["encoding"]["x"]["title"]

    at = _open_tab(at, "Adversarial")
    titles = " ".join(s["title"]["text"] for s in _specs(at))
    assert "DeepFool L∞ robust accuracy" in titles and "DeepFool L2 robust accuracy" in titles
    at = _open_tab(at, "Noise")
    assert _specs(at)[0]["title"]["text"] == "Accuracy under Gaussian noise vs σ"  # no doubled axis name
    at = _open_tab(at, "Merge methods")
    assert [s["title"]["text"] for s in _specs(at)] == ["Test accuracy: merge methods vs their leaves"]
    at = _open_tab(at, "Table")
    assert not _specs(at)
    table = at.dataframe[0].value
    assert {"group", "level", "n", "accuracy"} <= set(table.columns)
    assert set(table["group"]) == {"unmerged leaves", "hierarchical", "merge_many", "L2 zoo"}
    leaves = table[table["group"] == "unmerged leaves"]
    assert list(leaves["level"]) == [0] and list(leaves["n"]) == [4]  # 4 leaves shared by 2 trees: counted once
    assert [b.label for b in at.download_button][-8:] == ["CSV", "Parquet", "Markdown", "LaTeX"] * 2  # wide, raw
    assert [b.key for b in at.download_button][-8] == "cmp-wide-csv"
    at = _open_tab(at, "Overview")
    assert [b.label for b in at.download_button][:3] == ["SVG", "PNG", "PDF"]  # every chart downloads
    at = _open_tab(at, "Weights & Lipschitz")
    at.toggle(key="cmp_log").set_value(True).run()
    specs = _specs(_ok(at))
    assert len(specs) == 3 and all('"type": "log"' in json.dumps(s) for s in specs)


def test_compare_numbers_match_the_pandas_reference(populated_store):
    """The DuckDB aggregate behind charts and table equals comparison_table over the raw rows."""
    import pandas as pd

    from backend.levels import level_members, level_metrics, level_summary, stat_members
    from backend.tables import comparison_table

    trees = [populated_store["hier_tree"], populated_store["mm_tree"], populated_store["avg_tree"]]
    zoos = [populated_store["l2_zoo_id"]]
    key = populated_store["eval_key"]
    fast = level_summary(stat_members(level_members(tree_ids=trees, zoo_ids=zoos)), key)
    slow = comparison_table(level_metrics(tree_ids=trees, zoo_ids=zoos, eval_key=key))
    assert len(fast) > 50
    pd.testing.assert_frame_equal(fast, slow, check_dtype=False, atol=1e-12)


def test_tree_view_colours_nodes_and_shows_parents(populated_store):
    at = _ok(_app("views/tree_view.py", query={"tree": str(populated_store["hier_tree"])}))
    dot = at.get("graphviz_chart")[0].proto.spec
    assert dot.count("->") == 6 and "Test accuracy = " in dot  # 4 leaves -> 2 -> 1
    assert "lowest in this tree" in _texts(at.markdown)  # the colour bar
    assert at.selectbox(key="tv_metric").format_func("fgsm_acc@0.01") == "FGSM robust accuracy @ 0.01"
    root = populated_store["root_id"]
    assert at.selectbox(key="tv_node").value == root
    assert "Parents:" in _texts(at.markdown) and f"Node #{root}" in _texts(at.subheader)
    at.selectbox(key="tv_metric").set_value("weight_norm").run()
    assert "Weight norm Σ‖W‖_F + ‖b‖₂ = " in _ok(at).get("graphviz_chart")[0].proto.spec
    at.selectbox(key="tv_node").set_value(populated_store["leaf_ids"][0]).run()
    assert "none (a leaf)" in _texts(_ok(at).markdown)


def test_tree_view_draws_wide_trees_compactly():
    import pandas as pd

    from app.ui.graphs import tree_dot

    leaves = [{"model_id": i, "level": 0, "kind": "trained", "parents": [], "accuracy": 0.8 + i / 100}
              for i in range(8)]
    star = pd.DataFrame([*leaves, {"model_id": 8, "level": 3, "kind": "merge_many", "parents": list(range(8)),
                                   "accuracy": 0.5}])
    dot = tree_dot(star, "accuracy")
    assert 'label="#3\\n0.83"' in dot and "nodesep" in dot and "level 0" not in dot
    assert "Test accuracy = " in tree_dot(star.iloc[[0, 1, 8]].assign(parents=[[], [], [0, 1]]), "accuracy")


def _seconds_range(text: str) -> tuple[float, float]:
    """'about 4 min (3–6 min)' -> (180, 360)."""
    import re

    m = re.search(r"\((<1|[\d.]+)–([\d.]+) (s|min|h|days)\)", text)
    assert m, text
    unit = {"s": 1, "min": 60, "h": 3600, "days": 86400}[m.group(3)]
    low = 0.0 if m.group(1) == "<1" else float(m.group(1))
    return low * unit, float(m.group(2)) * unit


def test_home_estimate_holds_the_measured_time_of_the_last_run(lab_home):
    """A demo run recorded its work rates as the steps do (per model, per tree, once per experiment);
    Home's estimate range for demo then contains that run's measured wall time."""
    import numpy as np
    import torch

    from backend import estimate
    from backend.experiment import PRESETS
    from store import rates

    plan = PRESETS["demo"]
    sizes = estimate.layer_sizes(plan.dataset, plan.widths)
    arch, threads = estimate.arch_key(sizes), torch.get_num_threads()
    rng = np.random.default_rng(0)
    total = 0.0

    def record(phase, units, seconds_per_unit):
        nonlocal total
        seconds = units * seconds_per_unit * rng.uniform(0.85, 1.15)  # a machine's jitter
        rates.record_rate(phase, arch, "cpu", threads, units, seconds)
        total += seconds

    for _ in range(plan.n_trained):  # 16 models at 2.1e-10 s per training MAC: ~10 s each
        record("train", estimate.train_units(sizes, 1, plan.epochs, 60000), 2.1e-10)
    for _, n in plan.leaf_groups():
        for method in ("hierarchical", "merge_many"):
            record("merge", estimate.merge_units(method, n, plan.widths), 4e-9)
    n_eval = plan.n_trained + sum((n - 1) + 2 for _, n in plan.leaf_groups())
    for _ in range(n_eval):
        record("evaluate", estimate.eval_units(sizes, plan.eval_config(), 1, 10000), 6e-11)
    rates.record_rate("overhead", "experiment", "cpu", threads, 1.0, 9.0)
    total += 9.0

    at = _ok(_app())
    metric = next(m for m in at.metric if m.label.startswith("Estimated time here (measured)"))
    low, high = _seconds_range(metric.value)
    assert low <= total <= high, (metric.value, total)
    assert "from rates jobs measured on this machine" in _texts(at.caption)


def test_home_estimate_holds_a_real_tiny_run_of_the_preset(lab_home, monkeypatch):
    """A real (tiny) preset run records its rates as it goes; Home's estimate for a fresh run of that preset (its
    own is now stored: Home says so), from those rates, holds the duration the store recorded for the job (what
    the Runs table shows), its figure adds up to about that duration, and its range is no wider than the spread
    the run itself measured (per model, per tree, per evaluation batch) implies. No timing assertion: both sides
    come from the same run."""
    import dataclasses

    import pandas as pd

    from backend import experiment, runs
    from backend.jobs.runner import run_job
    from backend.jobs.spec import ExperimentSpec
    from store import jobs
    from store.db import connect, fetch_df
    from tests.jobs.fakes import patch_tiny_data

    patch_tiny_data(monkeypatch)  # 4x4 images, 3 classes, 256 train / 64 test samples
    tiny = experiment.ExperimentPlan(
        preset="tiny", widths=(8, 6), epochs=2, batch_size=64, train_subset=256, trees=((1, 4),), reg_models=1,
        eval={"metrics": ["accuracy", "fgsm", "noise", "weight_norm"], "subset": 64}, note="a tiny test preset")
    monkeypatch.setitem(experiment.PRESETS, "tiny", tiny)
    spec = ExperimentSpec(preset="tiny", dataset="fashion_mnist")
    job_id = jobs.create_job(spec.kind, spec.to_dict(), spec.key())
    assert run_job(job_id) == "done"
    row = jobs.get_job(job_id)
    duration = runs.duration_seconds(row["started_at"], row["finished_at"])

    at = _ok(_app())
    assert "6 of 6 models, 3 of 3 trees and 11 of 11 evaluations already stored: not recomputed" in _texts(
        at.caption)  # the run's own work: a rerun costs only its overhead
    from app.ui import reads

    monkeypatch.setitem(experiment.PRESETS, "tiny", dataclasses.replace(tiny, seed=1))  # the same work, fresh
    reads.clear()
    at = _ok(_app())
    assert "already stored" not in _texts(at.caption)
    assert any(m.value.startswith("**tiny**") for m in at.markdown)
    metric = at.metric[-1]  # the last preset card's: tiny was added last
    assert metric.label == "Estimated time here (measured)", metric.label
    low, high = _seconds_range(metric.value)
    assert low <= duration <= high, (metric.value, duration)
    from backend.estimate import estimate_breakdown

    figure = estimate_breakdown(experiment.plan_for("tiny"), measure=False)["total"]  # the "about …" figure
    assert abs(figure - duration) <= 0.2 * duration + 1, (figure, duration)  # the run's own rates add up to it

    with connect() as con:
        rates = fetch_df(con, "SELECT phase, seconds / units AS r FROM work_rates WHERE job_id = ?", [job_id])
    assert set(rates["phase"]) == {"train", "merge", "evaluate", "overhead"}
    spread = float(pd.Series({p: g["r"].max() / g["r"].min() for p, g in rates.groupby("phase")}).max())
    assert high <= 1.25 * spread * duration + 1, (metric.value, duration, spread)  # +1: shown in whole seconds


def test_zoo_table_filters_names_its_eval_config_and_plots_curves_with_bands(populated_store):
    from store import train_curves

    for zoo, seeds in (("tiny-plain", [0, 1, 2, 3]), ("tiny-l2", [10, 11])):
        for seed in seeds:
            for epoch in (1, 2, 3):
                train_curves.add_point(f"model-{zoo}-{seed}", epoch, 2.0 / epoch + seed / 100, 0.3 * epoch,
                                       zoo_id=populated_store["zoo_id" if zoo == "tiny-plain" else "l2_zoo_id"],
                                       seed=seed)
    at = _ok(_app("views/zoo.py", query={"zoos": str(populated_store["zoo_id"])}))
    table = at.dataframe(key="models_table").value
    assert len(table) == 4 and set(table["zoo_id"]) == {populated_store["zoo_id"]}  # Runs' "Zoo #N models"
    assert set(table["evaluated_with"]) == {populated_store["eval_key"][:8] + " · 200 test images"}
    at.multiselect(key="zoo-filter").set_value([]).run()
    at.selectbox(key="zoo-evaluated").set_value("not evaluated").run()
    table = _ok(at).dataframe(key="models_table").value
    assert list(table["model_id"]) == [populated_store["odd_id"]] and list(table["evaluated_with"]) == ["not evaluated"]
    at.selectbox(key="zoo-evaluated").set_value("all models").run()
    specs = [json.loads(c.proto.spec) for c in _ok(at).get("vega_lite_chart")]
    assert [s["title"]["text"] for s in specs] == ["Training loss", "Training accuracy"]
    bands = next(d for c in at.get("vega_lite_chart") for d in c.proto.datasets if d.name == "bands")
    assert bands is not None  # one band per zoo kind (plain: 4 models, L2: 2)
    assert "6 models, grouped by zoo kind" in _texts(at.caption)


def test_report_start_form_estimate_follows_the_chosen_preset(no_workers):
    at = _ok(_app("views/report.py"))
    at.radio(key="report_preset").set_value("demo").run()
    demo = next(c.value for c in _ok(at).caption if c.value.startswith("**demo**"))
    at.radio(key="report_preset").set_value("paper").run()
    paper = next(c.value for c in _ok(at).caption if c.value.startswith("**paper**"))
    assert "estimate about" in demo and "estimate about" in paper and demo.split("estimate")[1] != paper.split(
        "estimate")[1]
