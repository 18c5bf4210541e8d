"""Training throughput of the default CIFAR-shaped MLP vs this machine's plain fp32 matmul rate.

    .venv/bin/python benchmarks/bench_train.py                  # CPU, one model at a time
    python benchmarks/bench_train.py --device cuda --stack 32    # GPU, 32 models per stacked step

Prints, side by side in one run: samples/s; the GEMM FLOP/s training achieves (the fwd + bwd matmuls it
really does: layer 0 needs no input gradient) next to the rate of the very same GEMM shapes run bare, and
their ratio (target >= 0.8); the conventional 6 x params x samples rate; and the share of step time spent
gathering + converting + augmenting batches (target < 10 %). Data is synthetic CIFAR-shaped uint8.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from backend import train
from backend.data import DatasetInfo, dataset_info
from backend.train import (
    TrainConfig,
    TrainData,
    data_generators,
    epoch_plan,
    gather_batch,
    pixel_affine,
    train_models,
)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_shapes(sizes: tuple[int, ...], batch: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of every matmul in one fwd+bwd step: forward, weight grad, input grad (not for layer 0)."""
    shapes = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        shapes.append((batch, d_in, d_out))  # h @ W^T
        shapes.append((d_out, batch, d_in))  # grad^T @ h
        if i > 0:
            shapes.append((batch, d_out, d_in))  # grad @ W
    return shapes


def bare_gemm_seconds(shapes, stack: int, device: torch.device, reps: int) -> float:
    """Seconds for one pass over `shapes` as plain fp32 matmuls (bmm over `stack` when stacking)."""
    lead = (stack,) if stack > 1 else ()
    mats = [(torch.randn(*lead, m, k, device=device), torch.randn(*lead, k, n, device=device)) for m, k, n in shapes]
    outs = [torch.empty(*lead, m, n, device=device) for m, _, n in shapes]
    mm = torch.bmm if stack > 1 else torch.mm
    for (a, b), o in zip(mats, outs, strict=True):  # warm-up
        mm(a, b, out=o)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        for (a, b), o in zip(mats, outs, strict=True):
            mm(a, b, out=o)
    sync(device)
    return (time.perf_counter() - t0) / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--stack", type=int, default=None, help="models per step (default: 1 on CPU, 32 on GPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 30 on CPU, 200 on GPU)")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    stack = args.stack or (32 if on_gpu else 1)
    steps = args.steps or (200 if on_gpu else 30)
    b = args.batch

    cifar = dataset_info("cifar10")
    info = DatasetInfo("synthetic-cifar", cifar.in_shape, 10, cifar.mean, cifar.std, cifar.classes)
    g = torch.Generator().manual_seed(0)
    n = steps * b
    data = TrainData(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                     torch.randint(0, 10, (n,), generator=g), torch.zeros(b, 3, 32, 32, dtype=torch.uint8),
                     torch.zeros(b, dtype=torch.long), info)
    config = TrainConfig(widths=(512, 512, 512, 256), epochs=1, batch_size=b, augment=True)
    sizes = (3072, *config.widths, 10)
    n_params = sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:], strict=True))
    seeds = list(range(stack))

    # training: time between progress reports, so setup and the final test pass are left out
    train.REPORT_EVERY = max(1, steps // 10)
    warm = TrainData(data.x_train[: 4 * b], data.y_train[: 4 * b], data.x_test, data.y_test, info)
    train_models(config, seeds, device=device, data=warm, stack=stack)
    stamps: list[tuple[float, int]] = []
    train_models(config, seeds, device=device, data=data, stack=stack,
                 progress=lambda e: stamps.append((time.perf_counter(), e.done)))
    (t_a, s_a), (t_b, s_b) = stamps[0], stamps[-1]
    step_s = (t_b - t_a) / (s_b - s_a)
    samples_per_s = stack * b / step_s

    # data only: the same gather + to_float + crop/flip + normalise per step, plus the per-epoch plan
    gens = data_generators(seeds, [torch.Generator().manual_seed(s) for s in seeds], device)  # as training
    x_dev, y_dev = data.x_train.to(device), data.y_train.to(device)
    scale, shift = pixel_affine(info, device)
    sync(device)
    t0 = time.perf_counter()
    plan = epoch_plan(gens, n, True, device)
    for s in range(steps):
        gather_batch(x_dev, y_dev, plan, s * b, (s + 1) * b, scale, shift)
    sync(device)
    data_s = (time.perf_counter() - t0) / steps

    shapes = gemm_shapes(sizes, b)
    gemm_flops = stack * sum(2 * m * k * nn for m, k, nn in shapes)
    bare_s = bare_gemm_seconds(shapes, stack, device, reps=max(5, steps // 2))
    achieved = gemm_flops / step_s
    bare = gemm_flops / bare_s
    model_flops = 6 * n_params * stack * b / step_s

    name = torch.cuda.get_device_name(device) if on_gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; MLP {' -> '.join(map(str, sizes))} ({n_params:,} params); "
          f"{stack} model(s) per step; batch {b}; {steps} timed steps; crop+flip on; matmul "
          f"{'TF32' if on_gpu and torch.backends.cuda.matmul.allow_tf32 else 'fp32'}")
    print(f"{'step time':<38}{step_s * 1e3:10.2f} ms")
    print(f"{'samples/s (all stacked models)':<38}{samples_per_s:10.0f}")
    print(f"{'train GEMM GFLOP/s (real fwd+bwd)':<38}{achieved / 1e9:10.1f}")
    print(f"{'bare fp32 matmul GFLOP/s, same shapes':<38}{bare / 1e9:10.1f}")
    print(f"{'ratio train / bare (target >= 0.8)':<38}{achieved / bare:10.2f}")
    print(f"{'6 x params x samples GFLOP/s':<38}{model_flops / 1e9:10.1f}")
    print(f"{'data gather+augment per step':<38}{data_s * 1e3:10.2f} ms")
    print(f"{'data share of step (target < 10 %)':<38}{100 * data_s / step_s:9.1f} %")


if __name__ == "__main__":
    main()
