"""Stacked evaluation of K models vs one model at a time, metric by metric (the per-sample protocol).

    .venv/bin/python benchmarks/bench_stacked_eval.py [--k 64] [--samples 200] [--device cpu|cuda]

K default MLPs (random init, CIFAR-shaped) on `--samples` random pixel images. For accuracy/loss, FGSM,
DeepFool L∞ and L2 and Gaussian noise it prints, side by side in one run: seconds for K models one at a
time (suite.evaluate_model, the per-model fast paths included), seconds for one stacked call
(evaluate_stack) and their ratio, plus the largest difference between the two results (accuracies differ
by at most a boundary sample). The ratio decides the CPU path of the evaluation step.
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":
    _threads = next((a.split("=")[1] for a in sys.argv if a.startswith("--threads=")), "2")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, _threads)

import time

import torch

from backend.evaluate.config import EvalConfig
from backend.evaluate.stacked import evaluate_stack
from backend.evaluate.suite import evaluate_model
from backend.models import MLP, MLPConfig

METRICS = ("accuracy", "fgsm", "deepfool_linf", "deepfool_l2", "noise")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--metrics", default=",".join(METRICS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    models = []
    for s in range(args.k):
        torch.manual_seed(s)
        models.append(MLP(MLPConfig()).to(device).eval())
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.samples, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (args.samples,), generator=g).to(device)
    print(f"stacked evaluation, K = {args.k} default MLPs, {args.samples} samples, device {device}, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    header = f"{'metric':<14} {'one at a time s':>15} {'stacked s':>10} {'ratio':>7} {'max diff':>9}"
    print(header)
    print("-" * len(header))
    total_single = total_stacked = 0.0
    for metric in args.metrics.split(","):
        config = EvalConfig(metrics=(metric,), batch_size=1000)
        sync(device)
        t0 = time.perf_counter()
        single = [evaluate_model(m, x, y, config) for m in models]
        sync(device)
        t_single = time.perf_counter() - t0
        t0 = time.perf_counter()
        stacked = evaluate_stack(models, x, y, config, device=device)
        sync(device)
        t_stacked = time.perf_counter() - t0
        diff = max(abs(a.value - b.value) for rs, rt in zip(single, stacked, strict=True)
                   for a, b in zip(rs, rt, strict=True) if not a.metric.endswith("_median"))
        total_single += t_single
        total_stacked += t_stacked
        print(f"{metric:<14} {t_single:>15.2f} {t_stacked:>10.2f} {t_single / t_stacked:>6.2f}x {diff:>9.2g}")
    print(f"{'all':<14} {total_single:>15.2f} {total_stacked:>10.2f} {total_single / total_stacked:>6.2f}x")


if __name__ == "__main__":
    main()
