"""`python -m backend interpolate`: interpolation curves and barriers between stored models."""

from __future__ import annotations

import argparse

from backend.cli.common import add_run_options, int_list, name_list, positive_int, run_spec


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
    p.add_argument("--align", type=name_list, default=None,
                   help="comma list of none,weight,activation (default: all three)")
    p.add_argument("--repair", action="store_true", help="also compute every alignment followed by REPAIR")
    p.add_argument("--lam-grid", default="21", help="a point count (21 = 0, 0.05, …, 1) or a comma list of λ")
    p.add_argument("--images", type=positive_int, default=4096,
                   help="images for activation matching and REPAIR statistics (default 4096)")
    p.add_argument("--image-split", choices=("train", "test"), default="train", help="where those images come from")
    p.add_argument("--data-seed", type=int, default=0, help="which images (seeded draw)")
    p.add_argument("--seed", type=int, default=0, help="weight matching's seed")
    p.add_argument("--subset", type=positive_int, default=None, help="first N test images (default: all)")
    p.add_argument("--train-subset", type=positive_int, default=None,
                   help="also evaluate the curve on the first N training images")
    add_run_options(p)


def config_from_args(args: argparse.Namespace) -> dict:
    from backend.connectivity import ALIGNMENTS, ConnectivityConfig, parse_grid

    return ConnectivityConfig(
        lam_grid=parse_grid(args.lam_grid), aligns=tuple(args.align or ALIGNMENTS), repair=args.repair,
        images=args.images, image_split=args.image_split, data_seed=args.data_seed, seed=args.seed,
        test_subset=args.subset, train_subset=args.train_subset).to_dict()


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
