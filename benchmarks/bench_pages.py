"""Time to first render of every dashboard page on a big store (target: under 1 s each).

Builds (or reuses) a store with 1 600 trained models (an 800-model plain zoo and 400-model L1 and L2 zoos),
one 16-leaf hierarchical tree + MergeMany + naive average over the first 16 plain leaves, and evaluation
rows for every model under the full default protocol's parameter grid (accuracy, loss, FGSM ×11 ε,
DeepFool L∞/L2 ×11 ε each + medians, noise ×8 σ, weight norm, global and local Lipschitz): ~78 k rows.
The metric VALUES are synthetic (plausible, seeded): this measures rendering, not science. Weights are a
few tiny real state dicts shared by content address.

Each page is measured with streamlit.testing.v1.AppTest: a fresh AppTest per page, st.cache_data cleared,
the router run once on Home (untimed), then the timed first run of the page (cold cache) and a second run
(warm cache). Home's cold time is its very first run. Modules are imported before timing (a server pays
imports once, not per page).

    .venv/bin/python benchmarks/bench_pages.py                # temp store, removed afterwards
    .venv/bin/python benchmarks/bench_pages.py /tmp/big-home  # build there once, reuse on later runs
(append 2>/dev/null to hide Streamlit's "no runtime / bare mode" warnings, which AppTest prints per run)
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # AppTest outside a server warns on every run

import numpy as np
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
HOME_SCRIPT = str(ROOT / "app" / "Home.py")
PAGES = ["views/home.py", "views/zoo.py", "views/merge_builder.py", "views/runs.py", "views/compare.py",
         "views/tree_view.py", "views/report.py"]
TARGET_S = 1.0
ZOOS = (("bench-plain", "plain", 800), ("bench-l1", "l1", 400), ("bench-l2", "l2", 400))
N_LEAVES = 16
TRAIN = {"dataset": "fashion_mnist", "widths": [16, 8], "epochs": 1, "batch_size": 512, "optimizer": "adam",
         "lr": 1e-3, "momentum": 0.9, "reg": "none", "reg_strength": 0.0, "augment": None, "train_subset": 500}


def _tiny_weights(n: int) -> list[str]:
    from backend.models import MLP, MLPConfig, state_dict_of
    from store.weights import save_weights

    hashes = []
    for seed in range(n):
        torch.manual_seed(seed)
        hashes.append(save_weights(state_dict_of(MLP(MLPConfig(in_shape=(1, 28, 28), widths=(16, 8),
                                                               mean=(0.286,), std=(0.353,))))))
    return hashes


def synthetic_rows(rng: np.random.Generator, level: int, zoo_kind: str, config) -> list[tuple]:
    """One model's evaluation rows on the full default grid; values plausible, not measured."""
    acc = float(np.clip(0.86 - 0.035 * level - (0.01 if zoo_kind != "plain" else 0.0)
                        + rng.normal(0, 0.008), 0.1, 0.99))
    robust = 0.006 * (1.3 if zoo_kind == "l2" else 1.0) * (1 + 0.1 * level) * rng.uniform(0.9, 1.1)
    rows = [("accuracy", None, acc), ("loss", None, 0.4 + 0.1 * level + rng.normal(0, 0.02))]
    rows += [("fgsm_acc", e, acc * math.exp(-e / robust)) for e in config.fgsm_eps]
    rows += [("deepfool_linf_acc", e, acc * math.exp(-e / (0.7 * robust))) for e in config.deepfool_linf_eps]
    rows += [("deepfool_l2_acc", e, acc * math.exp(-e / (25 * robust))) for e in config.deepfool_l2_eps]
    rows += [("deepfool_linf_median", None, 0.7 * robust * math.log(2)),
             ("deepfool_l2_median", None, 25 * robust * math.log(2))]
    rows += [("noise_acc", s, acc * math.exp(-((s / 0.15) ** 2))) for s in config.noise_sigma]
    norm = 40.0 * (0.8 if zoo_kind != "plain" else 1.0) * (1 - 0.08 * level) * rng.uniform(0.95, 1.05)
    lip = 300.0 * (0.7 if zoo_kind != "plain" else 1.0) * (1 - 0.15 * level) * rng.uniform(0.9, 1.1)
    rows += [("weight_norm", None, norm), ("lipschitz_global", None, lip),
             ("lipschitz_local_mean", config.lipschitz_radius, lip / 8),
             ("lipschitz_local_std", config.lipschitz_radius, lip / 40)]
    return rows


def build_store() -> dict:
    """Fill the store at REBASIN_HOME (one connect() around the bulk inserts) and return what it holds."""
    from backend.evaluate.config import EvalConfig
    from store import db, evaluations, jobs, models, trees, zoos

    config = EvalConfig()
    key = config.key()
    rng = np.random.default_rng(0)
    hashes = _tiny_weights(4)
    start = time.perf_counter()
    with db.connect():
        evaluations.register_eval_config(key, config.to_dict())
        zoo_members: dict[str, list[int]] = {}
        for name, kind, n in ZOOS:
            train = {**TRAIN, "reg": "none" if kind == "plain" else kind,
                     "reg_strength": 0.0 if kind == "plain" else 1e-4}
            zid = zoos.create_zoo(name, "fashion_mnist", kind, train, n, key=f"bench-zoo-{name}")
            ids = []
            for seed in range(n):
                mid = models.add_model(kind="trained", dataset="fashion_mnist", widths=[16, 8], config=train,
                                       weights=hashes[seed % len(hashes)], key=f"bench-{name}-{seed}",
                                       zoo_id=zid, seed=seed, seconds=1.0, train_loss=0.4, train_acc=0.88)
                evaluations.save_evaluations(mid, key, synthetic_rows(rng, 0, kind, config))
                ids.append(mid)
            zoo_members[kind] = ids
        leaves = zoo_members["plain"][:N_LEAVES]
        tree = trees.create_tree("hierarchical", leaves, {"lam": 0.5, "pairing": "as_listed", "seed": 0},
                                 key="bench-tree-h")
        level_ids, index, level = list(leaves), N_LEAVES, 0
        while len(level_ids) > 1:
            level += 1
            nxt = []
            for a, b in zip(level_ids[0::2], level_ids[1::2], strict=True):
                mid = models.add_model(kind="hierarchical", dataset="fashion_mnist", widths=[16, 8],
                                       config={"method": "hierarchical"}, weights=hashes[index % len(hashes)],
                                       key=f"bench-h-{index}", tree_id=tree, level=level, node_index=index,
                                       parents=[a, b], seconds=0.5)
                trees.add_merge(tree, mid, "hierarchical", 0.5, 3, [1.0, 1.2, 1.25], 0.5)
                evaluations.save_evaluations(mid, key, synthetic_rows(rng, level, "plain", config))
                nxt.append(mid)
                index += 1
            level_ids = nxt
        trees.set_tree_root(tree, level_ids[0])
        tree_ids = [tree]
        for method in ("merge_many", "average"):
            tid = trees.create_tree(method, leaves, {"seed": 0}, key=f"bench-tree-{method}")
            mid = models.add_model(kind=method, dataset="fashion_mnist", widths=[16, 8], config={"method": method},
                                   weights=hashes[0], key=f"bench-{method}", tree_id=tid, level=level,
                                   node_index=N_LEAVES, parents=leaves, seconds=2.0)
            trees.add_merge(tid, mid, method, None, 3 if method == "merge_many" else 0, [1.0, 1.1], 2.0)
            evaluations.save_evaluations(mid, key, synthetic_rows(rng, 1 if method == "merge_many" else 4,
                                                                  "plain", config))
            trees.set_tree_root(tid, mid)
            tree_ids.append(tid)
        for i in range(20):
            job = jobs.create_job("merge", {"kind": "merge", "model_ids": leaves, "methods": ["hierarchical"]},
                                  f"bench-job-{i}")
            jobs.finish_job(job, "done", result={"tree_ids": tree_ids, "eval_key": key})
    return {"seconds": time.perf_counter() - start, "eval_key": key, "tree_ids": tree_ids}


def ensure_experiment() -> int:
    """A finished experiment over the bench zoos and trees, so the Report page has a report to build."""
    from backend.evaluate.config import EvalConfig
    from backend.experiment import PRESETS
    from store import experiments, trees, zoos

    if not experiments.list_experiments().empty:
        return int(experiments.list_experiments()["id"].iloc[0])
    zoo_ids = {str(r.kind): int(r.id) for r in zoos.list_zoos().itertuples()}
    tree_ids = {str(r.method): int(r.id) for r in trees.list_trees().itertuples()}
    leaves = trees.get_tree(tree_ids["hierarchical"])["leaves"]
    exp = experiments.create_experiment("bench", "demo", "fashion_mnist", {"preset": "demo"}, key="bench-exp")
    result = {"experiment_id": exp, "plan": PRESETS["demo"].to_dict(), "eval_key": EvalConfig().key(),
              "eval": EvalConfig().to_dict(), "zoos": zoo_ids,
              "groups": [{"pair": 0, "leaves": len(leaves), "leaf_ids": leaves, "trees": tree_ids}],
              "tree_ids": list(tree_ids.values()), "n_models": 1617}
    experiments.update_experiment(exp, status="done", result=result)
    return exp


def _store_summary() -> str:
    from store import status

    c = status.counts()
    return (f"{c['zoos']} zoos · {c['models']} models · {c['trees']} trees · {c['evaluations']} evaluation rows "
            f"· {c['evaluated_models']} evaluated models")


def _warm_imports() -> None:
    """What a running server has imported before any page renders."""
    import altair  # noqa: F401
    import streamlit  # noqa: F401

    import app.ui.frame  # noqa: F401
    import app.ui.widgets  # noqa: F401
    import backend.charts  # noqa: F401
    import backend.experiment  # noqa: F401
    import backend.jobs.queue  # noqa: F401
    import backend.merge.tree  # noqa: F401
    import backend.report  # noqa: F401  (scipy.stats: ~1 s to import, once per server)
    import backend.train  # noqa: F401


COMPARE_TABS = ["Adversarial", "Noise", "Weights & Lipschitz", "Merge methods", "Table"]


def measure_compare_tabs(timeout: float = 300) -> list[tuple[str, float, list[str]]]:
    """Seconds to open each lazy Compare tab for the first time (its charts are built only then)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    at = AppTest.from_file(HOME_SCRIPT, default_timeout=timeout)
    at.run()
    at.switch_page("views/compare.py").run()
    out = []
    for tab in COMPARE_TABS:
        at.session_state["cmp_tab"] = tab
        t0 = time.perf_counter()
        at.run()
        out.append((tab, time.perf_counter() - t0, [str(e.value)[:200] for e in at.exception]))
    return out


def measure_page(page: str, timeout: float = 300) -> tuple[float, float, list[str]]:
    """(cold seconds, warm seconds, exceptions) for the first and second render of `page`."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    at = AppTest.from_file(HOME_SCRIPT, default_timeout=timeout)
    if page == "views/home.py":
        t0 = time.perf_counter()
        at.run()
        cold = time.perf_counter() - t0
    else:
        at.run()  # the router lands on Home first; then drop every cache and time the page itself
        st.cache_data.clear()
        at.switch_page(page)
        t0 = time.perf_counter()
        at.run()
        cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    at.run()
    warm = time.perf_counter() - t0
    return cold, warm, [str(e.value)[:200] for e in at.exception]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", nargs="?", help="build the store here once and reuse it on later runs "
                        "(default: a temporary store, removed afterwards)")
    args = parser.parse_args()
    reuse = Path(args.home) if args.home else None
    home = reuse or Path(tempfile.mkdtemp(prefix="rebasin-bench-pages-"))
    os.environ["REBASIN_HOME"] = str(home)
    os.environ.setdefault("REBASIN_DATA", str(home / "data"))
    try:
        if reuse is not None and (home / "lab.duckdb").exists():
            print(f"reusing store at {home}")
        else:
            home.mkdir(parents=True, exist_ok=True)
            info = build_store()
            print(f"built store at {home} in {info['seconds']:.1f} s (eval key {info['eval_key']})")
        ensure_experiment()
        print(_store_summary())
        print("metric values are SYNTHETIC (plausible, seeded): a render benchmark, not results")
        _warm_imports()
        load = os.getloadavg()
        print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
        print(f"{'page':<24}{'cold s':>9}{'warm s':>9}  < {TARGET_S:g} s (cold)")
        results = []
        for page in PAGES:
            if not (ROOT / "app" / page).exists():
                continue
            cold, warm, errors = measure_page(page)
            results.append((page, cold, warm))
            mark = "yes" if cold < TARGET_S else "NO"
            print(f"{page:<24}{cold:>9.3f}{warm:>9.3f}  {mark}" + (f"  EXCEPTION: {errors}" if errors else ""),
                  flush=True)
        for tab, seconds, errors in measure_compare_tabs():
            print(f"{'  compare tab ' + tab:<28}{seconds:>9.3f}{'':>5}  {'yes' if seconds < TARGET_S else 'NO'}"
                  + (f"  EXCEPTION: {errors}" if errors else ""), flush=True)
        load = os.getloadavg()
        print(f"load average after:  {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        met = sum(c < TARGET_S for _, c, _ in results)
        print(f"{met}/{len(results)} pages under {TARGET_S:g} s cold; slowest cold "
              f"{max(c for _, c, _ in results):.3f} s, slowest warm {max(w for _, _, w in results):.3f} s")
    finally:
        if reuse is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
