"""What the *bracket* preset's strong attack and certificate cost, measured on one of its models.

Trains one model of the preset's training config on its dataset (Fashion-MNIST by default; Debian's copy when
present), then evaluates it with the preset's EvalConfig three ways, timed side by side in one process: the
default protocol alone (= the demo preset's evaluation), each added metric alone, and everything. Also counts
the attack work (samples × gradient steps) of the APGD curve with the two grid searches of
backend/evaluate/strong.py, and prints backend/estimate's figure for the same evaluation, so the estimate
can be checked against the clock. The README's preset table quotes this script's output.

    .venv/bin/python benchmarks/bench_bracket_preset.py [--dataset fashion_mnist] [--smoke]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion_mnist")
    ap.add_argument("--preset", default="bracket")
    ap.add_argument("--smoke", action="store_true", help="a tiny run that only checks the script works")
    args = ap.parse_args()

    from backend import estimate
    from backend.data import load_split, to_float
    from backend.evaluate import ascent
    from backend.evaluate.suite import evaluate_model
    from backend.experiment import BRACKET_METRICS, plan_for
    from backend.metrics import ALL_METRICS
    from backend.models import mlp_from_state_dict
    from backend.train import TrainConfig, train_models

    smoke = {"epochs": 1, "train_subset": 1000, "eval": {"subset": 40, "apgd_steps": 5, "deepfool_steps": 5,
                                                         "lipschitz_points": 5}}
    plan = plan_for(args.preset, args.dataset, smoke if args.smoke else None)
    config = plan.eval_config()
    t0 = time.perf_counter()
    (trained,) = train_models(TrainConfig.from_dict(plan.train_dict()), [0], device="cpu")
    print(f"{args.preset} preset on {args.dataset}: one model {plan.widths} trained in "
          f"{time.perf_counter() - t0:.1f} s; threads {torch.get_num_threads()}")
    x, y = load_split(args.dataset, train=False)
    x = to_float(x)
    model = mlp_from_state_dict(trained.params, in_shape=tuple(x.shape[1:]))

    def timed(metrics):
        start = time.perf_counter()
        rows = evaluate_model(model, x, y, dataclasses.replace(config, metrics=tuple(metrics)))
        return time.perf_counter() - start, rows

    base, _ = timed(ALL_METRICS)
    print(f"  default protocol ({config.subset} test images): {base:.1f} s per model")
    parts = {}
    for metric in BRACKET_METRICS:
        parts[metric], rows = timed([metric])
        curve = " ".join(f"{r.value:.3f}" for r in rows if r.metric == f"{metric}_acc")
        print(f"  + {metric:15s} {parts[metric]:.1f} s per model   curve {curve}")
    total, _ = timed([*ALL_METRICS, *BRACKET_METRICS])
    print(f"  everything: {total:.1f} s per model ({total / base:.1f}x the default protocol)")

    # attack work: samples x gradient steps, with each grid search
    from backend.evaluate.strong import strong_search

    calls = {"rows": 0}
    original = ascent.loss_and_grad

    def counting(model_, xb, yb, loss, shape):
        calls["rows"] += xb.shape[0]
        return original(model_, xb, yb, loss, shape)

    ascent.loss_and_grad = counting
    try:
        xs, ys = x[:config.subset], y[:config.subset]
        for search in ("walk", "bisect"):
            calls["rows"] = 0
            start = time.perf_counter()
            strong_search(model, xs, ys, config.deepfool_linf_eps, attack="apgd", steps=config.apgd_steps,
                          search=search)
            print(f"  APGD (CE + DLR) {search:6s}: {calls['rows'] / xs.shape[0]:.0f} gradient steps per sample, "
                  f"{time.perf_counter() - start:.1f} s")
    finally:
        ascent.loss_and_grad = original

    n_eval = estimate.estimate_breakdown(plan, "cpu", measure=False)["n_evaluated"]
    for name, metrics, measured in (("default", ALL_METRICS, base),
                                    ("with bracket metrics", [*ALL_METRICS, *BRACKET_METRICS], total)):
        ev = dataclasses.replace(config, metrics=tuple(metrics))
        est = estimate.evaluate_estimate(1, plan.dataset, plan.widths, ev, "cpu")
        print(f"  estimate per model, {name}: {est['evaluate']:.1f} s (measured {measured:.1f} s)")
    print(f"  the preset evaluates {n_eval} models: about {n_eval * (total - base) / 60:.1f} min more than without "
          f"the bracket metrics at the measured rate")


if __name__ == "__main__":
    main()
