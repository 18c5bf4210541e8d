"""Seconds per unit of work (cost.py's units) on this machine, from the best source there is.

Every job step records the work it did and how long it took in the store (store/rates.py: `work_rates`), so
the seconds per unit come first from what jobs *measured on this machine* (total seconds over total work of the
newest measurements, preferring the same architecture: measured_rate), then from a calibration timed here
(`<home>/calibration.json`: a few Adam steps, forward passes and one LAP of a stand-in MLP, on request only),
then from DEFAULT_RATES (measured on the 2-core development machine).

Timing takes seconds, so a page render never does it: pages ask with `measure=False`, which reads the
store's rates and a cached calibration only. torch, numpy and scipy are imported where they time or count
threads, so importing the estimate package stays cheap.
"""

from __future__ import annotations

import json
import math
import threading
import time

from backend.estimate.cost import macs
from store.files import atomic_write_bytes

TRAIN_OVERHEAD = 1.25  # batching, shuffling, augmentation, per-model train/test accuracy
EVAL_OVERHEAD = 1.5  # attack bookkeeping, projection/clipping, store writes
MATCH_SWEEPS = 4  # typical weight-matching sweeps until no improvement
TRAIN_MODEL_SECONDS = 1.0  # per trained model (batch gathering, test accuracy, saving) in the fallback
RECENT = 10  # measurements per phase an estimate looks at

# Seconds per unit of work on the 2-core development machine (torch 2 threads, CPU): per multiply-add of
# one training sample's step (forward + backward + Adam), per multiply-add of one forward sample, per
# width^3 of one LAP. Medians of measure_rates over the preset architectures at load average ~1.4;
# used until this machine is calibrated.
DEFAULT_RATES = {"train_mac_s": 6.2e-11, "forward_mac_s": 1.9e-11, "lap_width3_s": 1.8e-10}

_MEMO: dict[str, dict] = {}
_LOCK = threading.Lock()


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _calibration_file():
    from store.paths import home_dir

    return home_dir() / "calibration.json"


def measure_rates(device: str, layer_sizes: tuple[int, ...], batch: int) -> dict:
    """Seconds per training step, per forward sample and per LAP at the widest hidden layer."""
    import numpy as np
    import torch
    from scipy.optimize import linear_sum_assignment

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
    return f"{device}|{'-'.join(map(str, layer_sizes))}|{batch}|{_threads()}"


def default_rates(layer_sizes: tuple[int, ...], batch: int) -> dict:
    """DEFAULT_RATES scaled to these layer sizes (multiply-adds per sample, widest hidden layer)."""
    per_sample = macs(layer_sizes)
    width = max(layer_sizes[1:-1]) if len(layer_sizes) > 2 else layer_sizes[0]
    return {"train_step_s": DEFAULT_RATES["train_mac_s"] * per_sample * batch,
            "forward_sample_s": DEFAULT_RATES["forward_mac_s"] * per_sample,
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
    from store.db import read_only_reason

    with _LOCK:
        _MEMO.clear()
        if read_only_reason() is None:
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
            from store.db import read_only_reason

            if read_only_reason() is None:  # a read-only home stays byte-for-byte as it was: memory only
                atomic_write_bytes(path, json.dumps(disk, indent=1).encode())
        _MEMO[key] = disk[key]
        return _MEMO[key]


def fallback_rates(device: str, sizes: tuple[int, ...], batch: int, measure: bool) -> dict:
    """Seconds per unit of each phase from a calibration (or DEFAULT_RATES): the model before any job ran."""
    r = rates(device, sizes, batch) if measure else (cached_rates(device, sizes, batch)
                                                     or default_rates(sizes, batch))
    width = r["lap_width"]
    # train: see train_fallback (steps of a batch plus the per-model accuracy passes)
    return {"merge": MATCH_SWEEPS * r["lap_s"] / width ** 3,
            "evaluate": r["forward_sample_s"] / macs(sizes) * EVAL_OVERHEAD,
            "source": "calibrated" if r.get("calibrated", True) else "default", "raw": r}


def train_fallback(fb: dict, n_models: int, epochs: int, samples: int, n_test: int, batch: int) -> float:
    """Seconds to train n_models from fallback_rates' raw rates: the steps of a batch, the accuracy passes
    over both splits, and a fixed cost per model."""
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
        df = store_rates.recent_rates(device, _threads(), limit=200)
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
