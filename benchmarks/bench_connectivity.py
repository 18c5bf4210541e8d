"""Connectivity benchmark: stacked curves vs one model at a time, REPAIR's cost, and what the merges do.

1. Speed: a 21-point interpolation curve (plain, and with REPAIR) evaluated as one stacked network
   (backend.connectivity.curves_for_pair) vs the same curve one model at a time (interpolate, build an MLP,
   evaluate it; REPAIR one model at a time). Both must give the same numbers; the ratio is printed.
2. REPAIR's cost relative to the merge it follows (weight matching + interpolation of one pair).
3. On Fashion-MNIST MLPs trained here (default: the default MLP 512-512-512-256, a few epochs): the loss
   and accuracy barrier of adjacent pairs for naive / weight / activation alignment (± REPAIR), and the
   test accuracy of the hierarchical tree's nodes per level with and without REPAIR, for both matchers.

    .venv/bin/python benchmarks/bench_connectivity.py [--models 8] [--epochs 2] [--widths 512,512,512,256]
        [--test-subset 2000] [--images 4096] [--threads 2]

Nothing is stored: it calls the pure functions only.
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # BLAS thread pools read these when numpy/torch load
    _threads = next((a.split("=")[1] for a in sys.argv if a.startswith("--threads=")), "2")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, _threads)

import statistics
import time

import numpy as np
import torch

from backend import data
from backend.connectivity import ConnectivityConfig, align, curves_for_pair, image_batch, parse_grid
from backend.evaluate.accuracy import accuracy_and_loss
from backend.merge.common import interpolate
from backend.merge.pair import merge_pair
from backend.merge.repair import repair
from backend.merge.tree import hierarchical_merge
from backend.models import mlp_from_state_dict
from backend.train import TrainConfig, train_models


def one_at_a_time(a, b, lams, x, y, images=None):
    """The baseline: every λ point built and evaluated as its own MLP (REPAIR, if images, per model)."""
    acc, loss = [], []
    for lam in lams:
        params = interpolate(a, b, lam)
        if images is not None:
            params = repair(params, [a, b], [1 - lam, lam], images)
        ac, lo = accuracy_and_loss(mlp_from_state_dict(params), x, y)
        acc.append(ac)
        loss.append(lo)
    return acc, loss


def timed(fn, *args, repeat=1, **kwargs):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return out, best


def speed_rows(a, b, x, y, images, n_images):
    """Part 1 for one pair: (label, stacked s, one-at-a-time s) for plain and REPAIRed 21-point curves."""
    lams = parse_grid("21")
    out = []
    for repaired in (False, True):
        cfg = ConnectivityConfig(lam_grid=lams, aligns=("none",), repair=repaired, images=n_images)
        # align "none" on an already aligned pair: the curve of weight matching without re-matching
        runs = [curves_for_pair(a, b, cfg, test=(x, y), images=images)[-1] for _ in range(2)]
        curve, t_stacked = runs[-1], min(c.seconds for c in runs)  # this variant's own time
        (acc, loss), t_single = timed(one_at_a_time, a, b, lams, x, y, images if repaired else None, repeat=2)
        assert np.allclose(curve.loss, loss, rtol=1e-4) and np.allclose(curve.accuracy, acc, atol=1e-3)
        out.append(("REPAIR" if repaired else "plain ", t_stacked, t_single))
    return out


def cifar_shape_speed(args) -> None:
    from backend.models import MLP, MLPConfig, state_dict_of

    torch.manual_seed(0)
    a, b = (state_dict_of(MLP(MLPConfig())) for _ in range(2))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.test_subset, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (args.test_subset,), generator=g)
    images = torch.rand(args.images, 3, 32, 32, generator=g)
    print(f"1. 21-point curve, CIFAR-10-shaped default MLP (3072-512-512-512-256-10), {len(y)} random images")
    for label, t_stacked, t_single in speed_rows(a, b, x, y, images, args.images):
        print(f"   {label}: stacked {t_stacked:.2f} s, one at a time {t_single:.2f} s -> {t_single / t_stacked:.1f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=8, help="Fashion-MNIST models to train (a power of 2)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--widths", default="512,512,512,256")
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--test-subset", type=int, default=2000)
    p.add_argument("--images", type=int, default=4096, help="batch for activation matching and REPAIR")
    p.add_argument("--threads", default="2")
    p.add_argument("--speed-only-cifar-shape", action="store_true",
                   help="only part 1, on two random CIFAR-10-shaped default MLPs (3072 inputs) and random images")
    args = p.parse_args()
    torch.set_num_threads(int(args.threads))
    if args.speed_only_cifar_shape:
        return cifar_shape_speed(args)

    widths = tuple(int(w) for w in args.widths.split(","))
    config = TrainConfig(dataset="fashion_mnist", widths=widths, epochs=args.epochs, batch_size=512,
                         train_subset=args.train_subset)
    t0 = time.perf_counter()
    trained = train_models(config, list(range(args.models)), device="cpu")
    print(f"trained {args.models} MLPs {args.widths} x {args.epochs} epochs in {time.perf_counter() - t0:.0f} s; "
          f"test accuracy {', '.join(f'{m.test_acc:.3f}' for m in trained)}")
    models = [m.params for m in trained]
    x, y = data.load_split("fashion_mnist", False, download=False)
    x, y = data.to_float(x[:args.test_subset]), y[:args.test_subset]
    images = image_batch("fashion_mnist", args.images, "train", 0)

    # 1. stacked curve vs one model at a time
    lams = parse_grid("21")
    print(f"\n1. 21-point curve on {len(y)} test images (weight-matched pair)")
    for label, t_stacked, t_single in speed_rows(models[0], align(models[0], models[1], "weight")[0], x, y,
                                                 images, args.images):
        print(f"   {label}: stacked {t_stacked:.2f} s, one at a time {t_single:.2f} s "
              f"-> {t_single / t_stacked:.1f}x (same numbers)")

    # 2. REPAIR's cost relative to the merge
    merged, t_merge = timed(merge_pair, models[0], models[1], repeat=2)
    aligned = align(models[0], models[1], "weight")[0]
    _, t_repair = timed(repair, merged.params, [models[0], aligned], [0.5, 0.5], images, repeat=2)
    print(f"\n2. pair merge (weight matching + interpolation) {t_merge:.2f} s; REPAIR on {args.images} images "
          f"{t_repair:.2f} s = {t_repair / t_merge:.2f}x the merge")

    # 3. barriers of adjacent pairs
    cfg = ConnectivityConfig(lam_grid=lams, repair=True, images=args.images)
    rows = {}
    for i in range(0, len(models) - 1, 2):
        for c in curves_for_pair(models[i], models[i + 1], cfg, test=(x, y), images=images):
            rows.setdefault((c.align, c.repair), []).append((c.loss_barrier, c.accuracy_barrier, c.accuracy[10]))
    print(f"\n3. barriers of {len(models) // 2} independent pairs (mean ± std; test subset {len(y)})")
    print(f"   {'alignment':<24} {'loss barrier':>18} {'accuracy barrier':>18} {'acc at λ=0.5':>16}")
    for (method, repaired), vals in rows.items():
        cols = list(zip(*vals, strict=True))
        cells = [f"{statistics.mean(c):.4f} ± {statistics.pstdev(c):.4f}" for c in cols]
        print(f"   {method + (' + REPAIR' if repaired else ''):<24} {cells[0]:>18} {cells[1]:>18} {cells[2]:>16}")

    # 4. hierarchical tree per level, with and without REPAIR, both matchers
    print(f"\n4. hierarchical tree over {len(models)} leaves: test accuracy per level (mean over the level's nodes)")
    for matcher in ("weight", "activation"):
        for repaired in (False, True):
            nodes, t_tree = timed(hierarchical_merge, models, matcher=matcher, repair=repaired, images=images)
            by_level = {}
            for node in nodes:
                acc, _ = accuracy_and_loss(mlp_from_state_dict(node.params), x, y)
                by_level.setdefault(node.level, []).append(acc)
            levels = "  ".join(f"L{k}: {statistics.mean(v):.4f}" for k, v in sorted(by_level.items()))
            print(f"   {matcher:<10} {'+ REPAIR' if repaired else '        '}  {levels}   ({t_tree:.1f} s)")


if __name__ == "__main__":
    main()
