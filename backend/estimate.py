"""How long a job will take: one source for every time estimate (Home, preset cards, Report, Runs, CLI).

A cost model counts the work a job implies in three phases, each in its own unit:

- train: multiply-adds of the training samples seen (models × epochs × samples × MACs per sample),
- merge: width³ summed over hidden layers, per weight-matching problem the method solves nominally
  as each method declares it in the merge registry (`matchings`: n − 1 for a hierarchical tree, 3 rounds × n
  for MergeMany, none for averaging),
- evaluate: multiply-adds of the forward-equivalent passes the metric protocol costs per model,

plus a fixed `overhead` per experiment (data loading, the report). Every job step records the work it did
and how long it took in the store (store/rates.py: `work_rates`), so the seconds per unit come first from
what jobs *measured on this machine* (total seconds over total work of the newest measurements,
preferring the same architecture), then from a calibration timed here (`<home>/calibration.json`: a few Adam steps, forward
passes and one LAP of a stand-in MLP, on request only), then from DEFAULT_RATES (measured on the 2-core
development machine). Each estimate is a range: measured rates give the spread of the recent
measurements widened by MEASURED_SPREAD; calibration and defaults give wide fixed factors. The pass counts per
metric are constants of the protocol.

Timing takes seconds, so a page render never does it: pages ask with `measure=False`, which reads the
store's rates and a cached calibration only.

Jobs cache by key, so an estimate counts only the work a job will actually do: backend/stored_work.py says
what the store already holds (models by key, complete trees, evaluation rows, interpolation curves), each
phase prices only its units still to do (a stored tree still costs its evaluation when its nodes have no
results), and the estimate's "cached" says per phase how much was stored ({"train": {"done": 12, "total": 16,
"unit": "models"}, ...}); describe_range adds "12 of 16 models already stored". `cached=False` prices it all.
"""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from backend.merge.registry import MERGE_METHODS, STUDY_METHODS
from store.files import atomic_write_bytes

TRAIN_OVERHEAD = 1.25  # batching, shuffling, augmentation, per-model train/test accuracy
EVAL_OVERHEAD = 1.5  # attack bookkeeping, projection/clipping, store writes
MATCH_SWEEPS = 4  # typical weight-matching sweeps until no improvement
DEEPFOOL_MEAN_STEPS = 6  # DeepFool on ReLU MLPs converges in a few steps (batched until all done)
FIXED_SECONDS = 5.0  # per job (worker start-up, data loading, report) until experiments measured it
TRAIN_MODEL_SECONDS = 1.0  # per trained model (batch gathering, test accuracy, saving) in the fallback
RECENT = 10  # measurements per phase an estimate looks at
MEASURED_SPREAD = (0.8, 1.25)  # widening of the measured rates' min..max
FALLBACK_SPREAD = {"calibrated": (0.6, 1.7), "default": (0.5, 3.0)}

# Seconds per unit of work on the 2-core development machine (torch 2 threads, CPU): per multiply-add of
# one training sample's step (forward + backward + Adam), per multiply-add of one forward sample, per
# width^3 of one LAP. Medians of measure_rates over the preset architectures at load average ~1.4;
# used until this machine is calibrated.
DEFAULT_RATES = {"train_mac_s": 6.2e-11, "forward_mac_s": 1.9e-11, "lap_width3_s": 1.8e-10}

_MEMO: dict[str, dict] = {}
_LOCK = threading.Lock()


def _device(device: str | None) -> str:
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def _calibration_file():
    from store.paths import home_dir

    return home_dir() / "calibration.json"


def measure_rates(device: str, layer_sizes: tuple[int, ...], batch: int) -> dict:
    """Seconds per training step, per forward sample and per LAP at the widest hidden layer."""
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    layers = []
    for a, b in zip(layer_sizes[:-1], layer_sizes[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1]).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch, layer_sizes[0], generator=gen).to(dev)  # [B, D]
    y = torch.randint(0, layer_sizes[-1], (batch,), generator=gen).to(dev)  # [B]

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    def timed(fn, reps):
        """Median of single runs after warm-up: robust to a busy machine's occasional stalls."""
        for _ in range(2):
            fn()
        times = []
        for _ in range(reps):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    train_step = timed(step, 7)
    with torch.no_grad():
        forward = timed(lambda: net(x), 7) / batch
    width = max(layer_sizes[1:-1])
    cost = np.random.default_rng(0).random((width, width))
    t0 = time.perf_counter()
    linear_sum_assignment(cost, maximize=True)
    lap = time.perf_counter() - t0
    return {"train_step_s": train_step, "forward_sample_s": forward, "lap_s": lap, "lap_width": width}


def _rates_key(device: str, layer_sizes: tuple[int, ...], batch: int) -> str:
    return f"{device}|{'-'.join(map(str, layer_sizes))}|{batch}|{torch.get_num_threads()}"


def default_rates(layer_sizes: tuple[int, ...], batch: int) -> dict:
    """DEFAULT_RATES scaled to these layer sizes (multiply-adds per sample, widest hidden layer)."""
    macs = sum(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:], strict=True))
    width = max(layer_sizes[1:-1]) if len(layer_sizes) > 2 else layer_sizes[0]
    return {"train_step_s": DEFAULT_RATES["train_mac_s"] * macs * batch,
            "forward_sample_s": DEFAULT_RATES["forward_mac_s"] * macs,
            "lap_s": DEFAULT_RATES["lap_width3_s"] * width ** 3, "lap_width": width, "calibrated": False}


def cached_rates(device: str, layer_sizes: tuple[int, ...], batch: int) -> dict | None:
    """The calibration for these sizes if it was measured before (memory or disk), else None; never times."""
    key = _rates_key(device, layer_sizes, batch)
    with _LOCK:
        if key in _MEMO:
            return _MEMO[key]
        path = _calibration_file()
        try:
            disk = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, json.JSONDecodeError):
            disk = {}
        if key in disk:
            _MEMO[key] = disk[key]
        return _MEMO.get(key)


def forget_calibration() -> None:
    """Drop every cached rate (memory and disk) so the next measured estimate times the machine afresh."""
    with _LOCK:
        _MEMO.clear()
        _calibration_file().unlink(missing_ok=True)


def rates(device: str, layer_sizes: tuple[int, ...], batch: int) -> dict:
    """measure_rates, cached per (device, sizes, batch, threads) in memory and on disk."""
    key = _rates_key(device, layer_sizes, batch)
    with _LOCK:
        if key in _MEMO:
            return _MEMO[key]
        path = _calibration_file()
        disk = {}
        if path.exists():
            try:
                disk = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                disk = {}
        if key not in disk:
            disk[key] = measure_rates(device, layer_sizes, batch)
            atomic_write_bytes(path, json.dumps(disk, indent=1).encode())
        _MEMO[key] = disk[key]
        return _MEMO[key]


def _split_sizes(dataset: str) -> tuple[int, int, tuple[int, ...], int]:
    from backend.data import dataset_info

    info = dataset_info(dataset)
    n_train, n_test = (50000, 10000) if dataset == "cifar10" else (60000, 10000)
    return n_train, n_test, tuple(info.in_shape), int(info.num_classes)


def layer_sizes(dataset: str, widths) -> tuple[int, ...]:
    _, _, in_shape, classes = _split_sizes(dataset)
    return (math.prod(in_shape), *(int(w) for w in widths), classes)


def arch_key(sizes: tuple[int, ...]) -> str:
    return "-".join(map(str, sizes))


def _macs(sizes: tuple[int, ...]) -> int:
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


# -- work units (what jobs record and estimates multiply) ----------------------------------------------


def train_units(sizes: tuple[int, ...], n_models: int, epochs: int, samples: int) -> float:
    """Training work: models × epochs × samples × multiply-adds per sample."""
    return float(n_models) * epochs * samples * _macs(sizes)


def merged_nodes(method: str, n_leaves: int) -> int:
    """Nodes a tree of the method stores above its n leaves (each is evaluated), as the registry declares it."""
    return MERGE_METHODS[method].merged_nodes(n_leaves) if method in MERGE_METHODS else 1


def merge_units(method: str, n_leaves: int, widths) -> float:
    """Merge work: width³ per hidden layer, per nominal matching problem of the method."""
    cube = float(sum(int(w) ** 3 for w in widths))
    return MERGE_METHODS[method].matchings(n_leaves) * cube if method in MERGE_METHODS else 0.0


def eval_passes(ev, classes: int) -> float:
    """Forward-equivalent passes per test sample the protocol `ev` (an EvalConfig) costs."""
    metrics = set(ev.metrics)
    passes = 1.0  # accuracy + loss
    if "fgsm" in metrics or any(m.startswith("fgsm") for m in metrics):
        passes += 3 + len(ev.fgsm_eps)
    if any(m.startswith("noise") for m in metrics):
        passes += len(ev.noise_sigma)
    deepfool_step = 1 + min(ev.deepfool_candidates, classes)  # forward + batched Jacobian rows
    for norm, grid in (("deepfool_linf", ev.deepfool_linf_eps), ("deepfool_l2", ev.deepfool_l2_eps)):
        if any(m.startswith(norm) or m == "deepfool" for m in metrics):
            passes += min(DEEPFOOL_MEAN_STEPS, ev.deepfool_steps) * deepfool_step + len(grid)
    passes += strong_passes(ev, classes)
    return passes


# Calibrated on the bracket preset's model (benchmarks/bench_bracket_preset.py, Fashion-MNIST, 256-128, 300 images):
# measured APGD L∞ (CE + DLR, 100 steps, bisecting grid search) = 15.2x the default protocol's evaluation time
# (this model: 16.3x); CROWN L∞ over the 11-point grid = 1.26x (this model: 1.25x).
STRONG_ATTACKED_SHARE = 0.5  # of the (grid eps × samples) pairs a strong attack still has to run on, roughly
CROWN_PASSES_PER_EPS = 3  # plus 2 per class


def strong_passes(ev, classes: int) -> float:
    """Forward-equivalent passes per sample of the optional strong attacks and certificates (rough: attacks
    cost 3 passes per step (forward + backward) on the samples not fooled yet; CROWN about 2·classes + 3
    per eps, IBP 2; the L2 certificate a local Lipschitz bound per eps)."""
    passes = 0.0
    for metric in getattr(ev, "metrics", ()):
        kind, _, p = metric.rpartition("_")
        grid = ev.deepfool_linf_eps if p == "linf" else ev.deepfool_l2_eps
        k = max(len(grid) - 1, 0)
        if kind == "pgd":
            passes += 3 * ev.pgd_steps * ev.attack_restarts * k * STRONG_ATTACKED_SHARE
        elif kind == "apgd":
            passes += 2 * 3 * ev.apgd_steps * ev.attack_restarts * k * STRONG_ATTACKED_SHARE
        elif metric == "certified_linf":
            passes += k * (2 if ev.certify_method == "ibp" else 2 * classes + CROWN_PASSES_PER_EPS)
        elif metric == "certified_l2":
            passes += k * (1 + classes) * 10
    return passes


def eval_units(sizes: tuple[int, ...], ev, n_models: int, n_test: int) -> float:
    """Evaluation work: models × forward-equivalent multiply-adds of the protocol on the test subset."""
    classes = sizes[-1]
    subset = min(ev.subset or n_test, n_test)
    samples = subset * eval_passes(ev, classes)
    if any(m.startswith("lipschitz") for m in ev.metrics):
        samples += ev.lipschitz_points * (1 + classes) * 10
    return float(n_models) * samples * _macs(sizes)


def _fallback_rates(device: str, sizes: tuple[int, ...], batch: int, measure: bool) -> dict:
    """Seconds per unit of each phase from a calibration (or DEFAULT_RATES): the model before any job ran."""
    r = rates(device, sizes, batch) if measure else (cached_rates(device, sizes, batch)
                                                     or default_rates(sizes, batch))
    macs = _macs(sizes)
    width = r["lap_width"]
    # train: see _train_fallback (steps of a batch plus the per-model accuracy passes)
    return {"merge": MATCH_SWEEPS * r["lap_s"] / width ** 3,
            "evaluate": r["forward_sample_s"] / macs * EVAL_OVERHEAD,
            "source": "calibrated" if r.get("calibrated", True) else "default", "raw": r}


def _train_fallback(fb: dict, n_models: int, epochs: int, samples: int, n_test: int, batch: int) -> float:
    r = fb["raw"]
    steps = epochs * math.ceil(samples / batch)
    return n_models * ((steps * r["train_step_s"] + (samples + n_test) * r["forward_sample_s"]) * TRAIN_OVERHEAD
                       + TRAIN_MODEL_SECONDS)


def measured_rate(phase: str, device: str, arch: str | None = None) -> dict | None:
    """{"rate", "low", "high", "n"} seconds per unit of `phase` from the RECENT newest measurements on this
    device and thread count (the same architecture's when there are any), or None when none exist.

    "rate" is their total seconds over their total units, so a job's one-off costs inside a measured step
    (the first model's warm-up, loading the test split for the first evaluation batch) count at the weight
    they had, and an estimate from one run's rates adds up to that run's time; low/high are the slowest and
    fastest single measurements."""
    from store import rates as store_rates

    try:
        df = store_rates.recent_rates(device, torch.get_num_threads(), limit=200)
    except Exception:  # noqa: BLE001 - an estimate must never break a page; fall back to the model
        return None
    df = df[df["phase"] == phase]
    if df.empty:
        return None
    if arch is not None and (df["arch"] == arch).any():
        df = df[df["arch"] == arch]
    df = df.head(RECENT)
    values = df["seconds_per_unit"].to_numpy(dtype=float)
    rate = float(df["seconds"].sum() / df["units"].sum())
    return {"rate": rate, "low": float(values.min()), "high": float(values.max()), "n": int(len(values))}


def _phase(phase: str, units: float, device: str, arch: str, fallback_seconds: float, fallback_source: str
           ) -> dict:
    """Seconds (and a low..high range) for `units` of `phase`: measured rates first, else the fallback."""
    if units <= 0:
        return {"seconds": 0.0, "low": 0.0, "high": 0.0, "source": "none"}
    m = measured_rate(phase, device, arch)
    if m is not None:
        lo, hi = MEASURED_SPREAD
        return {"seconds": units * m["rate"], "low": units * m["low"] * lo, "high": units * m["high"] * hi,
                "source": "measured"}
    lo, hi = FALLBACK_SPREAD[fallback_source]
    return {"seconds": fallback_seconds, "low": fallback_seconds * lo, "high": fallback_seconds * hi,
            "source": fallback_source}


def _overhead(device: str) -> dict:
    m = measured_rate("overhead", device)
    if m is None:
        return {"seconds": FIXED_SECONDS, "low": 0.0, "high": 4 * FIXED_SECONDS, "source": "default"}
    lo, hi = MEASURED_SPREAD
    return {"seconds": m["rate"], "low": m["low"] * lo, "high": m["high"] * hi, "source": "measured"}


def _combine(phases: dict, device: str, **extra) -> dict:
    sources = {p["source"] for p in phases.values() if p["source"] != "none"}
    source = "measured" if sources == {"measured"} else ("default" if "default" in sources - {"measured"}
                                                         or not sources else "calibrated")
    if sources and "measured" in sources and sources != {"measured"}:
        source = "partly measured"
    out = {"device": device, **{k: v["seconds"] for k, v in phases.items()},
           "total": sum(p["seconds"] for p in phases.values()),
           "low": sum(p["low"] for p in phases.values()), "high": sum(p["high"] for p in phases.values()),
           "phases": phases, "source": source, "calibrated": source != "default", **extra}
    return out


def _left(total: int, done: int) -> int:
    """Units still to do: the stored ones never count for more than the job's own."""
    return total - min(max(done, 0), total)


def _cached(**phases: tuple[int, int, str]) -> dict:
    """{phase: {"done", "total", "unit"}} for the phases a job has work in."""
    return {phase: {"done": min(int(done), int(total)), "total": int(total), "unit": unit}
            for phase, (done, total, unit) in phases.items() if total > 0}


def train_estimate(config, n_models: int, device: str | None = None, *, measure: bool = False, stored=None
                   ) -> dict:
    """Seconds to train `n_models` with a TrainConfig (see estimate_breakdown), less the `stored.models`
    already stored (a stored_work.Stored, or None)."""
    device = _device(device)
    n_train, n_test, _, _ = _split_sizes(config.dataset)
    sizes = layer_sizes(config.dataset, config.widths)
    samples = min(config.train_subset or n_train, n_train)
    fb = _fallback_rates(device, sizes, config.batch_size, measure)
    done = stored.models if stored is not None else 0
    todo = _left(n_models, done)
    units = train_units(sizes, todo, config.epochs, samples)
    fallback = _train_fallback(fb, todo, config.epochs, samples, n_test, config.batch_size)
    return _combine({"train": _phase("train", units, device, arch_key(sizes), fallback, fb["source"]),
                     "overhead": _overhead(device)}, device, cached=_cached(train=(done, n_models, "models")))


def merge_estimate(methods, n_leaves: int, dataset: str, widths, eval_config=None, device: str | None = None,
                   *, stored=None) -> dict:
    """Seconds to build one tree per method over n_leaves models, and to evaluate its nodes if asked; the
    complete trees and evaluated models in `stored` (a stored_work.Stored, or None) cost nothing."""
    device = _device(device)
    sizes = layer_sizes(dataset, widths)
    fb = _fallback_rates(device, sizes, 512, False)
    done_trees = [(m, n) for m, n in (stored.trees if stored is not None else ()) if m in methods]
    units = max(sum(merge_units(m, n_leaves, widths) for m in methods)
                - sum(merge_units(m, n, widths) for m, n in done_trees), 0.0)
    phases = {"merge": _phase("merge", units, device, arch_key(sizes), units * fb["merge"], fb["source"])}
    cached = {"merge": (len(done_trees), len(methods), "trees")}
    if eval_config is not None:
        n_nodes = n_leaves + sum(merged_nodes(m, n_leaves) for m in methods)
        evaluated = stored.evaluated if stored is not None else 0
        phases["evaluate"] = _evaluate_phase(sizes, eval_config, _left(n_nodes, evaluated), dataset, device, fb)
        cached["evaluate"] = (evaluated, n_nodes, "evaluations")
    return _combine({**phases, "overhead": _overhead(device)}, device, cached=_cached(**cached))


def _evaluate_phase(sizes, ev, n_models, dataset, device, fb) -> dict:
    _, n_test, _, _ = _split_sizes(dataset)
    units = eval_units(sizes, ev, n_models, n_test)
    return _phase("evaluate", units, device, arch_key(sizes), units * fb["evaluate"], fb["source"])


def evaluate_estimate(n_models: int, dataset: str, widths, eval_config, device: str | None = None, *,
                      stored=None) -> dict:
    """Seconds to evaluate n_models of one architecture with an EvalConfig, less the `stored.evaluated` ones
    that already have its results."""
    device = _device(device)
    sizes = layer_sizes(dataset, widths)
    fb = _fallback_rates(device, sizes, 512, False)
    done = stored.evaluated if stored is not None else 0
    return _combine({"evaluate": _evaluate_phase(sizes, eval_config, _left(n_models, done), dataset, device, fb),
                     "overhead": _overhead(device)}, device,
                    cached=_cached(evaluate=(done, n_models, "evaluations")))


def estimate_breakdown(plan, device: str | None = None, *, measure: bool = True, cached: bool = True,
                       before=None) -> dict:
    """Seconds per phase (train, merge, evaluate, overhead), in total, and a low..high range, for an
    ExperimentPlan on `device`, counting only the work not already stored (cached=False: all of it; `before`:
    only what was stored before that naive-UTC time counts as stored). "cached" says how much was stored.

    Rates measured by earlier jobs on this machine come first; measure=False never times the machine (for
    page renders): without measurements it uses a cached calibration, else DEFAULT_RATES. "source" says
    which: measured, partly measured, calibrated or default ("calibrated" is True unless default).
    """
    device = _device(device)
    n_train, n_test, _, _ = _split_sizes(plan.dataset)
    sizes = layer_sizes(plan.dataset, plan.widths)
    arch = arch_key(sizes)
    fb = _fallback_rates(device, sizes, plan.batch_size, measure)
    stored = None
    if cached:
        from backend.stored_work import experiment_stored

        stored = experiment_stored(plan, before)
    if stored is None:
        from backend.stored_work import Stored

        stored = Stored()

    samples = min(plan.train_subset or n_train, n_train)
    t_todo = _left(plan.n_trained, stored.models)
    t_units = train_units(sizes, t_todo, plan.epochs, samples)
    t_fallback = _train_fallback(fb, t_todo, plan.epochs, samples, n_test, plan.batch_size)
    variants = len(getattr(plan, "variants", ()))  # extra hierarchical trees (REPAIR, activation matching)
    methods = STUDY_METHODS
    m_units = sum(merge_units(method, n, plan.widths) for _, n in plan.leaf_groups() for method in methods)
    m_units += variants * sum(merge_units("hierarchical", n, plan.widths) for _, n in plan.leaf_groups())
    m_units = max(m_units - sum(merge_units(method, n, plan.widths) for method, n in stored.trees), 0.0)
    n_trees = len(plan.leaf_groups()) * (len(methods) + variants)
    n_eval = plan.n_trained + sum(sum(merged_nodes(m, n) for m in methods) + variants * merged_nodes("hierarchical", n)
                                  for _, n in plan.leaf_groups())
    e_units = eval_units(sizes, plan.eval_config(), _left(n_eval, stored.evaluated), n_test)
    c_forward, c_match = connectivity_units(plan, sizes, n_test, stored_pairs=stored.curves)
    m_units += c_match
    e_units += c_forward
    phases = {"train": _phase("train", t_units, device, arch, t_fallback, fb["source"]),
              "merge": _phase("merge", m_units, device, arch, m_units * fb["merge"], fb["source"]),
              "evaluate": _phase("evaluate", e_units, device, arch, e_units * fb["evaluate"], fb["source"]),
              "overhead": _overhead(device)}
    cached_work = _cached(train=(stored.models, plan.n_trained, "models"),
                          merge=(len(stored.trees), n_trees, "trees"),
                          evaluate=(stored.evaluated, n_eval, "evaluations"),
                          interpolate=(stored.curves, connectivity_pairs(plan), "curves"))
    return _combine(phases, device, n_trained=plan.n_trained, n_evaluated=n_eval,
                    interpolate_units=c_forward, evaluate_units=e_units, cached=cached_work)


def connectivity_pairs(plan) -> int:
    """Parent pairs an experiment draws interpolation curves for: every hierarchical tree's merged nodes
    (variant trees included; a pair two trees share counts for each). 0 without connectivity."""
    if not getattr(plan, "connectivity", None):
        return 0
    return sum(n - 1 for _, n in plan.leaf_groups()) * (1 + len(getattr(plan, "variants", ())))


def connectivity_units(plan, sizes: tuple[int, ...], n_test: int, *, stored_pairs: int = 0
                       ) -> tuple[float, float]:
    """(forward units, merge units) of an experiment's interpolation curves: grid points × variants × test
    images for every merged node's parents (less the `stored_pairs` that have curves), plus one matching per
    alignment and pair. (0, 0) without."""
    pairs = _left(connectivity_pairs(plan), stored_pairs)
    if not pairs:
        return 0.0, 0.0
    return interpolation_units(plan.connectivity, sizes, plan.widths, pairs, n_test)


def interpolation_units(config: dict, sizes: tuple[int, ...], widths, n_pairs: int, n_test: int,
                        n_train: int = 0) -> tuple[float, float]:
    """(forward units, merge units) of interpolation curves (a ConnectivityConfig dict) for n_pairs pairs:
    grid points × variants × images (test subset, plus the train subset when asked) forward per pair, and
    one matching per alignment and pair."""
    from backend.connectivity_config import ConnectivityConfig

    cc = ConnectivityConfig.from_dict(dict(config))
    images = min(cc.test_subset or n_test, n_test) + min(cc.train_subset or 0, n_train)
    points = len(cc.lam_grid) * len(cc.variants()) * images
    cube = float(sum(int(w) ** 3 for w in widths))
    return float(n_pairs * points * _macs(sizes)), float(n_pairs * len(cc.aligns) * cube)


def interpolate_estimate(n_pairs: int, dataset: str, widths, config: dict, device: str | None = None, *,
                         stored=None) -> dict:
    """Seconds to compute the interpolation curves of n_pairs model pairs of one architecture (less the
    `stored.curves` pairs that have them): the forward passes at the evaluation rate, the matchings at the merge
    rate (as estimate_breakdown counts them)."""
    device = _device(device)
    n_train, n_test, _, _ = _split_sizes(dataset)
    sizes = layer_sizes(dataset, widths)
    arch = arch_key(sizes)
    fb = _fallback_rates(device, sizes, 512, False)
    done = stored.curves if stored is not None else 0
    forward, match = interpolation_units(config, sizes, widths, _left(n_pairs, done), n_test, n_train)
    return _combine({"evaluate": _phase("evaluate", forward, device, arch, forward * fb["evaluate"], fb["source"]),
                     "merge": _phase("merge", match, device, arch, match * fb["merge"], fb["source"]),
                     "overhead": _overhead(device)}, device, cached=_cached(interpolate=(done, n_pairs, "curves")))


def job_estimate(kind: str, spec: dict, device: str | None = None, *, before=None) -> dict | None:
    """The estimate of a recorded job (its kind and spec dict), or None when it cannot be made. Work the store
    already holds is not priced (stored before `before`, a naive-UTC time, when given: a running job's start)."""
    from backend import stored_work

    try:
        if kind == "experiment":
            from backend.experiment import plan_for

            return estimate_breakdown(plan_for(spec["preset"], spec.get("dataset"), spec.get("overrides")),
                                      device, measure=False, before=before)
        if kind == "train":
            from backend.train_config import TrainConfig

            train = _spec(kind, spec)
            return train_estimate(TrainConfig.from_dict(spec["train"]), int(spec["n_models"]), device,
                                  stored=None if train is None else stored_work.train_stored(train, before))
        if kind in ("merge", "evaluate"):
            from backend.evaluate.config import EvalConfig
            from store import models as store_models

            ids = spec["model_ids"]
            first = store_models.get_model(int(ids[0]))
            if first is None:
                return None
            widths = first["widths"]  # get_model decodes the JSON columns
            if kind == "merge":
                merge = _spec(kind, spec)
                ev = None if spec.get("evaluate") is None else EvalConfig.from_dict(dict(spec["evaluate"]))
                return merge_estimate(spec.get("methods", ()), len(ids), first["dataset"], widths, ev, device,
                                      stored=None if merge is None else stored_work.merge_stored(merge, before))
            eval_dict = dict(spec.get("eval") or {})
            return evaluate_estimate(len(ids), first["dataset"], widths, EvalConfig.from_dict(eval_dict), device,
                                     stored=stored_work.evaluate_stored(ids, eval_dict, before))
        if kind == "interpolate":
            return _interpolate_job_estimate(spec, device, before)
    except (KeyError, ValueError, TypeError, IndexError):
        return None
    return None


def _spec(kind: str, spec: dict):
    """The job's spec object (what names its cached work), or None for a partial spec dict: then the whole job
    is priced."""
    from backend.jobs.spec import spec_from_dict

    try:
        return spec_from_dict({**spec, "kind": kind})
    except ValueError:
        return None


def _interpolate_job_estimate(spec: dict, device: str | None, before=None) -> dict | None:
    """An interpolate job's pairs (its own plus every two-parent node of its trees) priced as above."""
    from backend.stored_work import curves_stored
    from store import models as store_models
    from store import trees as store_trees
    from store.jsonutil import decoded

    pairs = [tuple(int(m) for m in p) for p in spec.get("pairs", [])]
    for tree_id in spec.get("tree_ids", []):
        nodes = store_trees.tree_nodes(int(tree_id))
        for parents in nodes["parents"] if not nodes.empty else []:
            parents = [int(m) for m in decoded(parents) or []]
            if len(parents) == 2 and tuple(parents) not in pairs:
                pairs.append((int(parents[0]), int(parents[1])))
    if not pairs:
        return None
    first = store_models.get_model(pairs[0][0])
    if first is None:
        return None
    config = spec.get("config") or {}
    return interpolate_estimate(len(pairs), first["dataset"], decoded(first["widths"]), config, device,
                                stored=curves_stored(pairs, config, before))


def describe_range(est: dict, *, stored: bool = True) -> str:
    """'about 3 min (2–5 min)': the estimate and its range, in the unit a person plans with; then, when part of
    the work is already stored (and `stored`), why it is short: '… — 12 of 16 models already stored'."""
    low, high = est["low"], est["high"]
    text = f"{describe(est['total'])} ({_span_text(low, high)})"
    note = stored_text(est.get("cached")) if stored else ""
    return f"{text} — {note}" if note else text


def stored_text(cached: dict | None) -> str:
    """'12 of 16 models and 3 of 6 trees already stored' for an estimate's "cached" (phases with nothing stored
    are left out); '' when nothing is."""
    parts = [f"{c['done']:,} of {c['total']:,} {c['unit']}" for c in (cached or {}).values() if c.get("done")]
    if not parts:
        return ""
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{listed} already stored"


def _span_text(low: float, high: float) -> str:
    """The range rounded outward (low down, high up), so what it shows still holds every time it holds."""
    if high < 90:
        return f"{max(1, math.floor(low))}–{max(1, math.ceil(high))} s"
    if high < 5400:
        return f"{math.floor(low / 60) if low >= 60 else '<1'}–{math.ceil(high / 60)} min"
    if high < 2 * 86400:
        return f"{math.floor(low / 360) / 10:.1f}–{math.ceil(high / 360) / 10:.1f} h"
    return f"{math.floor(low / 8640) / 10:.1f}–{math.ceil(high / 8640) / 10:.1f} days"


def describe(seconds: float) -> str:
    """'about 3 min', 'about 1.2 h', 'about 2.5 days' — what a person plans with."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min"
    if seconds < 2 * 86400:
        return f"about {seconds / 3600:.1f} h"
    return f"about {seconds / 86400:.1f} days"
