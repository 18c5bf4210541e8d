"""Strong attacks and certification, timed side by side on one default MLP and the same images.

  1. APGD-CE robust-accuracy curve over the 11-point L∞ grid (0 … 0.02): ours, two grid searches
     (backend/evaluate/strong.py): "walk" (the grid upwards, samples fooled at a smaller eps not attacked
     again, each sample leaving the batch once fooled: the first version) and "bisect" (largest eps first, then
     bisection, warm-started from the last point: the default) vs torchattacks' APGD run once per eps on all
     images, at equal steps. Prints the curves (they must agree: equal robust accuracy) and the speed
     ratios.                                                                            target >= 5x
  2. IBP and CROWN certification: cost per 1 000 samples at each eps, and the certified curve.

The model and data are bench_attacks.py's: the default MLP (3072→512→512→512→256→10) trained a few steps on
CIFAR-shaped synthetic data.

    .venv/bin/python benchmarks/bench_strong.py                          # 1 000 images, 100 APGD steps
    .venv/bin/python benchmarks/bench_strong.py --samples 300 --steps 20 --certify-samples 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_attacks import synthetic_cifar, timed, trained_model  # noqa: E402

from backend.evaluate.certify import certified_linf_curve  # noqa: E402
from backend.evaluate.config import LINF_EPS  # noqa: E402
from backend.evaluate.strong import strong_curve  # noqa: E402


def fmt(curve) -> str:
    return " ".join(f"{v:.3f}" for v in curve)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=100, help="APGD iterations (both sides)")
    ap.add_argument("--train-steps", type=int, default=150)
    ap.add_argument("--certify-samples", type=int, default=1000)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip-torchattacks", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    model = trained_model(args.train_steps, device)
    x, y = synthetic_cifar(args.samples, seed=1)
    x, y = x.to(device), y.to(device)
    grid = list(LINF_EPS)
    print(f"default MLP on {device}, {args.samples} images, {args.steps} APGD steps, threads "
          f"{torch.get_num_threads()}")

    rows = {"n": 0}  # samples through the model's forward (each attack step: one forward + one backward)
    model.register_forward_hook(lambda module, inputs, output: rows.__setitem__("n", rows["n"] + inputs[0].shape[0]))

    def work(fn):
        rows["n"] = 0
        out = timed(fn)
        return (*out, rows["n"] / x.shape[0])

    print("\n1. APGD-CE curve over 11 eps (time, and work = forward passes per image, which load does not change)")
    walk, walk_s, walk_w = work(lambda: strong_curve(model, x, y, grid, attack="apgd_ce", steps=args.steps,
                                                     batch_size=1000, search="walk"))
    print(f"  ours (walk)   {fmt(walk)}   {walk_s:.1f} s, work {walk_w:.0f}")
    ours, ours_s, ours_w = work(lambda: strong_curve(model, x, y, grid, attack="apgd_ce", steps=args.steps,
                                                     batch_size=1000, search="bisect"))
    print(f"  ours (bisect) {fmt(ours)}   {ours_s:.1f} s, work {ours_w:.0f}   ({walk_s / ours_s:.1f}x faster, "
          f"{walk_w / ours_w:.1f}x less work than walk)")
    if not args.skip_torchattacks:
        try:
            import torchattacks
        except ImportError as err:
            print(f"  torchattacks cannot be imported ({err}); `.venv/bin/pip install --no-deps torchattacks`")
        else:
            def theirs_curve():
                out = []
                for eps in grid:
                    adv = torchattacks.APGD(model, norm="Linf", eps=eps, steps=args.steps, n_restarts=1,
                                            loss="ce", seed=0)(x, y)
                    with torch.no_grad():
                        out.append(float((model(adv).argmax(1) == y).double().mean()))
                return out

            theirs, theirs_s, theirs_w = work(theirs_curve)
            print(f"  torchattacks  {fmt(theirs)}   {theirs_s:.1f} s, work {theirs_w:.0f}")
            for name, curve, s, w in (("walk", walk, walk_s, walk_w), ("bisect", ours, ours_s, ours_w)):
                gap = max(abs(a - b) for a, b in zip(curve, theirs, strict=True))
                print(f"  APGD curve ({name}): {theirs_s / s:.1f}x faster than torchattacks per eps, "
                      f"{theirs_w / w:.1f}x less work (largest robust-accuracy gap {gap:.3f}; target >= 5x)")

    xc, yc = x[:args.certify_samples], y[:args.certify_samples]
    n = xc.shape[0]
    print(f"\n2. Certification on {n} images, the same grid (each eps on every clean-correct sample)")
    for method in ("ibp", "crown"):
        per_eps = []
        for eps in grid[1:]:
            _, s = timed(lambda e=eps, m=method: certified_linf_curve(model, xc, yc, [e], method=m, batch_size=32))
            per_eps.append(s * 1000 / n)
        curve, s = timed(lambda m=method: certified_linf_curve(model, xc, yc, grid, method=m, batch_size=32))
        print(f"  {method:5s} {fmt(curve)}   per 1 000 samples and eps: {min(per_eps):.2f}–{max(per_eps):.2f} s; "
              f"whole curve (certified samples only re-checked) {s * 1000 / n:.1f} s per 1 000")


if __name__ == "__main__":
    main()
