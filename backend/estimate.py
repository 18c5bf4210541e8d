"""How long an experiment will take, from rates measured on this machine (not guessed per preset).

A cost model counts the work an ExperimentPlan implies (training steps, weight-matching LAPs, forward
passes of evaluation) and multiplies it by rates timed here, once per (device, architecture, threads), on
a stand-in MLP of the plan's layer sizes (a few Adam steps, a few forward passes, one LAP at the widest
layer). Timings are cached in memory and in `<home>/calibration.json`. The pass counts per metric (how
many forward-equivalents FGSM, DeepFool, noise and local Lipschitz cost) are constants of the protocol;
OVERHEAD factors are first guesses, not yet fitted against full preset runs. Rates are timed under the
machine's load at calibration time (a busy machine gives a pessimistic estimate). A planning aid only.

Timing takes seconds, so a page render never does it: the dashboard asks with `measure=False`, which uses
a cached calibration when there is one and otherwise DEFAULT_RATES (measured on the 2-core development
machine, scaled by the plan's layer sizes); calibration runs only on request (Home's "Calibrate" button,
`python -m backend experiment --estimate`).
"""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from store.files import atomic_write_bytes

TRAIN_OVERHEAD = 1.25  # batching, shuffling, augmentation, per-model train/test accuracy
EVAL_OVERHEAD = 1.5  # attack bookkeeping, projection/clipping, store writes
MATCH_SWEEPS = 4  # typical weight-matching sweeps until no improvement
MERGE_MANY_ROUNDS = 3  # typical MergeMany rounds until no improvement
DEEPFOOL_MEAN_STEPS = 6  # DeepFool on ReLU MLPs converges in a few steps (batched until all done)

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


def estimate_breakdown(plan, device: str | None = None, *, measure: bool = True) -> dict:
    """Seconds per phase (train, merge, evaluate) and in total, for an ExperimentPlan on `device`.

    measure=False never times the machine (for page renders): a cached calibration, else DEFAULT_RATES;
    the result's "calibrated" says which.
    """
    device = _device(device)
    n_train, n_test, in_shape, classes = _split_sizes(plan.dataset)
    sizes = (math.prod(in_shape), *plan.widths, classes)
    r = rates(device, sizes, plan.batch_size) if measure else (
        cached_rates(device, sizes, plan.batch_size) or default_rates(sizes, plan.batch_size))

    samples = min(plan.train_subset or n_train, n_train)
    steps = plan.epochs * math.ceil(samples / plan.batch_size)
    acc_passes = (samples + n_test) * r["forward_sample_s"]
    train = plan.n_trained * (steps * r["train_step_s"] + acc_passes) * TRAIN_OVERHEAD

    lap = sum(r["lap_s"] * (w / r["lap_width"]) ** 3 for w in plan.widths)
    match = MATCH_SWEEPS * lap
    merge = sum(((n - 1) + MERGE_MANY_ROUNDS * n) * match for _, n in plan.leaf_groups())
    variants = len(getattr(plan, "variants", ()))
    merge += variants * sum((n - 1) * match for _, n in plan.leaf_groups())  # REPAIR/activation: ~ a match

    ev = plan.eval_config()
    subset = min(ev.subset or n_test, n_test)
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
    per_model = subset * passes * r["forward_sample_s"]
    if any(m.startswith("lipschitz") for m in metrics):
        per_model += ev.lipschitz_points * (1 + classes) * r["forward_sample_s"] * 10
    n_eval = plan.n_trained + sum((n - 1) * (1 + variants) + 2 for _, n in plan.leaf_groups())
    evaluate = n_eval * per_model * EVAL_OVERHEAD
    conn = getattr(plan, "connectivity", None)
    if conn:  # every variant's curve: grid points x test images, for every merged node's parents
        from backend.connectivity import ConnectivityConfig

        cc = ConnectivityConfig.from_dict(conn)
        pairs = sum(n - 1 for _, n in plan.leaf_groups()) * (1 + variants)
        points = len(cc.lam_grid) * len(cc.variants()) * min(cc.test_subset or n_test, n_test)
        evaluate += pairs * (points * r["forward_sample_s"] + len(cc.aligns) * match)

    return {"device": device, "train": train, "merge": merge, "evaluate": evaluate,
            "total": train + merge + evaluate + 5.0, "n_trained": plan.n_trained, "n_evaluated": n_eval,
            "rates": r, "calibrated": r.get("calibrated", True)}


def describe(seconds: float) -> str:
    """'about 3 min', 'about 1.2 h', 'about 2.5 days' — what a person plans with."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min"
    if seconds < 2 * 86400:
        return f"about {seconds / 3600:.1f} h"
    return f"about {seconds / 86400:.1f} days"
