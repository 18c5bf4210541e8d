"""Attack speed, side by side in one run on one model and the same samples.

  1. FGSM curve (11 eps): ours (one gradient, then one forward per eps, first-layer shortcut for the
     MLP) vs recomputing the attack for every eps.                                   target >= 5x
  2. DeepFool L∞: ours (batched, analytic Jacobian, only unfinished samples) vs foolbox 3's
     LinfDeepFoolAttack, both turned into the same robust-accuracy curve.          target >= 3x
  3. DeepFool L2: ours vs torchattacks.DeepFool (per-sample loop, one backward per class).  target >= 50x

The model is the default MLP (3072→512→512→512→256→10) trained a few steps on CIFAR-shaped synthetic
data (faint class prototypes in loud noise: ~87% clean accuracy, FGSM at eps 0.02 near 0, like a real
CIFAR-10 MLP), so predictions are neither constant nor trivially robust.

    .venv/bin/python benchmarks/bench_attacks.py                      # full run (minutes on one CPU core)
    .venv/bin/python benchmarks/bench_attacks.py --fgsm-samples 2000 --deepfool-samples 200 --torchattacks-samples 20
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from backend.evaluate.config import L2_EPS, LINF_EPS
from backend.evaluate.deepfool import deepfool_curve, deepfool_with_success
from backend.evaluate.fgsm import _generic_curve_batch, fgsm_curve
from backend.models import MLP, MLPConfig


def synthetic_cifar(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000)
    protos = 0.015 * torch.randn(10, 3, 32, 32, generator=g)  # faint class signal ...
    g.manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    return (0.5 + protos[y] + 0.2 * torch.randn(n, 3, 32, 32, generator=g)).clamp_(0, 1), y  # ... in loud noise


def trained_model(steps: int, device: torch.device) -> MLP:
    torch.manual_seed(0)
    model = MLP(MLPConfig()).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(steps):
        x, y = synthetic_cifar(256, seed=10_000 + step)
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def fgsm_recomputed_per_eps(model, x, y, eps_grid, batch_size) -> list[float]:
    """The straightforward way: for every eps, attack (forward + backward) and then evaluate."""
    device = next(model.parameters()).device
    correct = [0] * len(eps_grid)
    for k, eps in enumerate(eps_grid):
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            xb.requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(xb), yb), xb)
            with torch.no_grad():
                x_adv = (xb + eps * grad.sign()).clamp(0, 1)
                correct[k] += int((model(x_adv).argmax(1) == yb).sum())
    return [c / len(x) for c in correct]


def fgsm_without_shortcut(model, x, y, eps_grid, batch_size) -> list[float]:
    """Ours, gradient once then one full forward per eps, without the MLP first-layer shortcut."""
    device = next(model.parameters()).device
    correct = torch.zeros(len(eps_grid))
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        correct += torch.tensor(_generic_curve_batch(model, xb, yb, list(eps_grid)), dtype=torch.float)
    return (correct / len(x)).tolist()


def warm_up(model, x, y, device) -> None:
    """Run every code path once on a few samples so no timing below pays for CUDA/BLAS start-up."""
    fgsm_curve(model, x, y, LINF_EPS)
    fgsm_recomputed_per_eps(model, x, y, LINF_EPS, len(x))
    fgsm_without_shortcut(model, x, y, LINF_EPS, len(x))
    for p, grid in (("linf", LINF_EPS), ("l2", L2_EPS)):
        deepfool_curve(model, x, y, grid, p=p)
    try:
        import foolbox as fb
    except ImportError:
        return
    fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=device)
    fb.attacks.LinfDeepFoolAttack()(fmodel, x.to(device), y.to(device), epsilons=list(LINF_EPS))
    fb.attacks.FGSM()(fmodel, x.to(device), y.to(device), epsilons=list(LINF_EPS))


def fmt(curve) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in curve) + "]"


def report(name: str, ours_s: float, theirs_s: float, other: str, target: float) -> None:
    ratio = theirs_s / ours_s
    verdict = "meets" if ratio >= target else "MISSES"
    print(f"{name}: ours {ours_s:.2f} s, {other} {theirs_s:.2f} s -> {ratio:.1f}x ({verdict} target {target:g}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fgsm-samples", type=int, default=10_000)
    ap.add_argument("--deepfool-samples", type=int, default=1000)
    ap.add_argument("--torchattacks-samples", type=int, default=100)
    ap.add_argument("--train-steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 = stable timings)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--skip", nargs="*", default=[], choices=["fgsm", "linf", "l2"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = trained_model(args.train_steps, device)
    n_max = max(args.fgsm_samples, args.deepfool_samples, args.torchattacks_samples)
    x, y = synthetic_cifar(n_max, seed=1)
    with torch.no_grad():
        clean = float((model(x[:2000].to(device)).argmax(1).cpu() == y[:2000]).double().mean())
    print(f"device {device}, threads {args.threads}, clean accuracy {clean:.3f} (first 2000 samples)")
    warm_up(model, x[:64], y[:64], device)

    if "fgsm" not in args.skip:
        xs, ys, n = x[:args.fgsm_samples], y[:args.fgsm_samples], args.fgsm_samples
        print(f"\n[1] FGSM, {len(LINF_EPS)} eps, {n} samples")
        naive, naive_s = timed(lambda: fgsm_recomputed_per_eps(model, xs, ys, LINF_EPS, args.batch_size))
        ours, ours_s = timed(lambda: fgsm_curve(model, xs, ys, LINF_EPS, args.batch_size))
        _, plain_s = timed(lambda: fgsm_without_shortcut(model, xs, ys, LINF_EPS, args.batch_size))
        print(f"  ours       {fmt(ours)}\n  recomputed {fmt(naive)}")
        print(f"  max gap {max(abs(a - b) for a, b in zip(ours, naive, strict=True)):.4f}")
        report("  FGSM", ours_s, naive_s, "recomputed per eps", 5)
        print(f"  (ours without the first-layer shortcut: {plain_s:.2f} s, {naive_s / plain_s:.1f}x)")
        try:
            import foolbox as fb
        except ImportError:
            print("  foolbox not importable: skipping its FGSM")
        else:
            fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=device)

            def foolbox_fgsm():  # foolbox re-runs the attack for every epsilon
                out = [0.0] * len(LINF_EPS)
                for i in range(0, n, args.batch_size):
                    xb, yb = xs[i:i + args.batch_size].to(device), ys[i:i + args.batch_size].to(device)
                    _, _, success = fb.attacks.FGSM()(fmodel, xb, yb, epsilons=list(LINF_EPS))
                    out = [o + float((~s).sum()) / n for o, s in zip(out, success, strict=True)]
                return out

            theirs, fb_s = timed(foolbox_fgsm)
            print(f"  foolbox    {fmt(theirs)}")
            report("  FGSM", ours_s, fb_s, "foolbox FGSM", 5)

    if "linf" not in args.skip:
        import foolbox as fb

        xs, ys, n = x[:args.deepfool_samples], y[:args.deepfool_samples], args.deepfool_samples
        print(f"\n[2] DeepFool L-inf (steps 50, candidates 10, overshoot 0.02), {n} samples")
        attack = fb.attacks.LinfDeepFoolAttack(steps=50, candidates=10, overshoot=0.02)
        fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=device)

        def foolbox_curve():
            _, _, success = attack(fmodel, xs.to(device), ys.to(device), epsilons=list(LINF_EPS))
            return (1 - success.double().mean(dim=1)).tolist()

        theirs, theirs_s = timed(foolbox_curve)
        (ours, median), ours_s = timed(lambda: deepfool_curve(model, xs, ys, LINF_EPS, p="linf",
                                                              batch_size=args.batch_size))
        print(f"  ours    {fmt(ours)} (median minimal L-inf perturbation {median:.4f})\n  foolbox {fmt(theirs)}")
        print(f"  max gap {max(abs(a - b) for a, b in zip(ours, theirs, strict=True)):.4f}")
        report("  DeepFool L-inf", ours_s, theirs_s, "foolbox (parameters frozen)", 3)
        # foolbox's own examples pass model.eval() as is: its backward then also fills weight grads
        for param in model.parameters():
            param.requires_grad_(True)
        _, default_s = timed(foolbox_curve)
        for param in model.parameters():
            param.requires_grad_(False)
        report("  DeepFool L-inf", ours_s, default_s, "foolbox (parameters requiring grad)", 3)

    if "l2" not in args.skip:
        xs, ys, n = x[:args.torchattacks_samples], y[:args.torchattacks_samples], args.torchattacks_samples
        print(f"\n[3] DeepFool L2 (steps 50, overshoot 0.02), {n} samples")
        try:
            import torchattacks
        except Exception as err:  # noqa: BLE001 — any import failure means: cannot compare
            print(f"  torchattacks cannot be imported ({err}); install it with "
                  "`.venv/bin/pip install --no-deps torchattacks`")
            return
        # torchattacks returns adversarials only, so both sides are timed for the attack alone
        (pert, fooled_ours), ours_s = timed(lambda: deepfool_with_success(model, xs, labels=ys, p="l2",
                                                                          batch_size=args.batch_size))
        (curve, median), curve_s = timed(lambda: deepfool_curve(model, xs, ys, L2_EPS, p="l2",
                                                                batch_size=args.batch_size))
        attack = torchattacks.DeepFool(model, steps=50, overshoot=0.02)
        adv, theirs_s = timed(lambda: attack(xs.to(device), ys.to(device)))
        with torch.no_grad():
            correct = (model(xs.to(device)).argmax(1) == ys.to(device)).cpu()
            fooled = (model(adv).argmax(1) != ys.to(device)).cpu()
            norms = (adv.cpu() - xs).flatten(1).norm(dim=1)[correct & fooled]
        print(f"  ours: fooled {int((correct & fooled_ours).sum())}/{int(correct.sum())} correct samples, "
              f"median minimal L2 {median:.4f}; whole curve incl. attack {curve_s:.2f} s: {fmt(curve)}")
        print(f"  torchattacks (all classes, its own overshoot rule): fooled {int((correct & fooled).sum())}"
              f"/{int(correct.sum())}, median L2 {float(norms.median()):.4f}")
        report("  DeepFool L2 attack", ours_s, theirs_s, "torchattacks", 50)


if __name__ == "__main__":
    main()
