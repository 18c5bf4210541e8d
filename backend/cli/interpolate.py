"""`python -m backend interpolate`: interpolation curves and barriers between stored models."""

from __future__ import annotations

import argparse

from backend.cli.common import add_run_options, int_list, run_spec


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "interpolate", help="interpolation curves and loss/accuracy barriers between models",
        description="Accuracy and loss of (1-λ)·A + λ·π(B) on a λ grid for each alignment π (none = naive, "
                    "weight or activation matching), optionally with REPAIR, and the barriers. --tree N does "
                    "it for every merged node's parent pair. Pairs already computed with the same options "
                    "are reused.")
    p.add_argument("--models", type=int_list, action="append", default=None,
                   help="a pair of model ids A,B (repeatable)")
    p.add_argument("--tree", type=int_list, action="append", default=None,
                   help="tree ids: every merged node's two parents (repeatable)")
    from backend.connectivity_config import ConnectivityConfig
    from backend.options import add_arguments

    add_arguments(p, ConnectivityConfig)  # one option per declared field (backend/connectivity_config.py)
    add_run_options(p)


def config_from_args(args: argparse.Namespace) -> dict:
    from backend.connectivity_config import ConnectivityConfig
    from backend.options import values_from_args

    return ConnectivityConfig(**values_from_args(args, ConnectivityConfig)).to_dict()


def run(args: argparse.Namespace) -> int:
    from backend.jobs.spec import InterpolateSpec

    pairs = [tuple(p) for p in args.models or []]
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(f"--models takes exactly two ids A,B, got {','.join(map(str, pair))}")
    trees = [t for group in args.tree or [] for t in group]
    if not pairs and not trees:
        raise ValueError("choose a pair with --models A,B or a tree with --tree N")
    spec = InterpolateSpec(pairs=tuple(pairs), tree_ids=tuple(trees), config=config_from_args(args))
    code, result = run_spec(spec, args)
    if result:
        from store.curves import curves

        rows = curves(pairs=[tuple(p) for p in result["pairs"]], curve_key=result["curve_key"], barriers_only=True)
        rows = rows[rows["split"] == "test"]
        print(f"curve key {result['curve_key']}: {result['computed']} pair(s) computed, "
              f"{len(result['pairs']) - result['computed']} cached")
        table = rows.pivot_table(index=["model_a", "model_b", "align", "repair"], columns="metric",
                                 values="value").reset_index()
        for r in table.itertuples(index=False):
            print(f"  {r.model_a} -> {r.model_b}  {r.align:<10} {'+REPAIR' if r.repair else '       '}  "
                  f"loss barrier {r.loss_barrier:.4f}  accuracy barrier {r.accuracy_barrier:.4f}")
    return code
