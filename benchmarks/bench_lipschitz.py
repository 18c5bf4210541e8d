"""Lipschitz bounds on the default MLP (3072→512→512→512→256→10), side by side with their peers.

  global: exact spectral norms (float64 Gram + eigvalsh, what global_lipschitz uses) vs
          torch.linalg.matrix_norm(ord=2) (full SVD) vs power iteration (an estimate from below, not a
          certified bound)
  local:  batched local_lipschitz vs the per-point loop local_lipschitz_naive, same points, same radius

Usage: .venv/bin/python benchmarks/bench_lipschitz.py [--points 100] [--radius 0.1] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from backend.evaluate.lipschitz import global_lipschitz, local_lipschitz, local_lipschitz_naive
from backend.evaluate.norms import folded_layers, weight_norm
from backend.models import MLP


def timed(fn, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def power_iteration_global(model: MLP, n_iter: int = 100, seed: int = 0) -> float:
    """Π of power-iteration estimates of ‖W_i‖₂ (float32): the common cheap peer; it approaches from below."""
    gen = torch.Generator(device=model.mean.device).manual_seed(seed)
    product = 1.0
    for w, _ in folded_layers(model):
        v = torch.randn(w.shape[1], generator=gen, device=w.device)
        for _ in range(n_iter):
            v = w.T @ (w @ v)
            v = v / torch.linalg.vector_norm(v)
        product *= float(torch.linalg.vector_norm(w @ v))
    return product


def svd_global(model: MLP) -> float:
    return math.prod(float(torch.linalg.matrix_norm(w, ord=2)) for w, _ in folded_layers(model, torch.float64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--radius", type=float, default=0.1)
    parser.add_argument("--naive-points", type=int, default=None, help="points for the slow loop (default: all)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    model = MLP().eval().to(device)
    x = torch.rand(args.points, 3, 32, 32, generator=torch.Generator().manual_seed(1)).to(device)
    print(f"device={device} threads={args.threads} points={args.points} radius={args.radius} "
          f"weight_norm={weight_norm(model):.3f}")

    global_lipschitz(model)  # warm-up (lazy LAPACK / CUDA init)
    exact, t_exact = timed(lambda: global_lipschitz(model), device)
    svd, t_svd = timed(lambda: svd_global(model), device)
    power, t_power = timed(lambda: power_iteration_global(model), device)
    print("\nglobal bound (per model)          value        seconds")
    print(f"  exact, Gram+eigvalsh f64  {exact:14.4f} {t_exact:12.4f}")
    print(f"  exact, full SVD f64       {svd:14.4f} {t_svd:12.4f}   time ratio svd/gram {t_svd / t_exact:.1f}x")
    print(f"  power iteration x100 f32  {power:14.4f} {t_power:12.4f}   time ratio power/gram "
          f"{t_power / t_exact:.2f}x, value ratio power/exact {power / exact:.6f}")

    local_lipschitz(model, x[:2], args.radius)  # warm-up
    rows = []
    n_naive = min(args.naive_points or args.points, args.points)
    x_naive = x[:n_naive]
    for kind in ("centre", "ball"):
        batched, t_batched = timed(lambda kind=kind: local_lipschitz(model, x, args.radius, kind=kind), device)
        naive, t_naive = timed(
            lambda kind=kind: local_lipschitz_naive(model, x_naive, args.radius, kind=kind), device)
        per100_b, per100_n = 100 * t_batched / args.points, 100 * t_naive / n_naive
        diff = float((batched[:n_naive].cpu() - naive).abs().max() / batched.abs().max())
        rows.append((kind, batched, per100_b, per100_n, diff))
    print("\nlocal bound, seconds per 100 points  batched    naive loop   naive/batched   max rel diff")
    for kind, _, per100_b, per100_n, diff in rows:
        print(f"  {kind:7s}                          {per100_b:8.3f}   {per100_n:10.3f}   {per100_n / per100_b:12.2f}x"
              f"   {diff:.1e}")
    print(f"\nvalues: global {exact:.4f}")
    for kind, batched, *_ in rows:
        b = batched.double()
        print(f"  local {kind:7s} mean {float(b.mean()):.4f} std {float(b.std()):.4f} "
              f"min {float(b.min()):.4f} max {float(b.max()):.4f}   global/mean {exact / float(b.mean()):.3f}x")


if __name__ == "__main__":
    main()
