"""Whole per-model evaluation: every metric of the default protocol on one default-width MLP.

Times `evaluate_model` metric by metric and all together (default grids; N test samples; default MLP
3072→512→512→512→256→10) on CPU or CUDA. The model is trained for a few hundred Adam steps on
CIFAR-shaped images labelled by a random linear teacher, so it is accurate and the attacks do real work.

    python benchmarks/bench_eval.py --samples 10000 --threads 2 [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import torch

from backend.evaluate.config import ALL_METRICS, EvalConfig
from backend.evaluate.suite import evaluate_model
from backend.models import MLP, MLPConfig

TEACHER = torch.randn(3 * 32 * 32, 10, generator=torch.Generator().manual_seed(1234))  # one labelling rule


def teacher_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images drawn with `seed`, labelled by the fixed teacher, so train and test share the task."""
    x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))  # [N, 3, 32, 32] in [0, 1]
    teacher = TEACHER
    y = ((x.reshape(n, -1) - 0.5) @ teacher).argmax(1)  # [N]
    return x, y


def trained_model(device: str, steps: int) -> MLP:
    torch.manual_seed(0)
    model = MLP(MLPConfig(mean=(0.5, 0.5, 0.5), std=(0.29, 0.29, 0.29))).to(device)
    x, y = teacher_data(50_000, seed=1)
    x, y = x.to(device), y.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (512,), device=device)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--train-steps", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = trained_model(args.device, args.train_steps)
    x, y = teacher_data(args.samples, seed=2)
    x, y = x.to(args.device), y.to(args.device)
    print(f"device {args.device}, {args.threads} CPU threads, {args.samples} samples, default MLP")

    rows, total = [], 0.0
    for metric in ALL_METRICS:
        config = EvalConfig(metrics=(metric,))
        t0 = time.perf_counter()
        out = evaluate_model(model, x, y, config)
        if args.device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        total += dt
        first = out[0]
        rows.append((metric, dt, f"{first.metric}={first.value:.4g}"))
    t0 = time.perf_counter()
    evaluate_model(model, x, y, EvalConfig())
    if args.device == "cuda":
        torch.cuda.synchronize()
    whole = time.perf_counter() - t0

    print(f"{'metric':<18}{'seconds':>10}  first row")
    for metric, dt, first in rows:
        print(f"{metric:<18}{dt:>10.2f}  {first}")
    print(f"{'sum of metrics':<18}{total:>10.2f}")
    print(f"{'whole protocol':<18}{whole:>10.2f}  (one evaluate_model call, default EvalConfig)")


if __name__ == "__main__":
    main()
