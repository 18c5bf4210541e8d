"""`python -m backend export`: write per-level metrics of trees / zoos as CSV, Parquet, Markdown or LaTeX."""

from __future__ import annotations

import argparse
from pathlib import Path

from backend.cli.common import flatten, int_list, name_list
from store.files import atomic_write_bytes

FORMATS = ("csv", "parquet", "markdown", "latex")


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export level metrics as a table",
                              description="Export evaluation rows of trees and zoos, tagged with their "
                                          "merge level: long rows (--table levels) or mean/std/n per "
                                          "level and metric (--table comparison).")
    p.add_argument("--tree", type=int_list, action="append", default=None, help="tree ids (repeatable)")
    p.add_argument("--zoo", type=int_list, action="append", default=None, help="zoo ids as references")
    p.add_argument("--table", choices=("levels", "comparison", "wide", "curves", "barriers"), default="levels",
                   help="levels/comparison: evaluations (long); wide: the paper table, one row per group × level, "
                        "'mean ± std (n)' per metric with units; curves: interpolation rows of every merged node's "
                        "parent pair (with --tree; all stored curves without); barriers: one row per curve")
    p.add_argument("--curve-key", default=None, help="curves/barriers: only this connectivity config")
    p.add_argument("--metrics", type=name_list, default=None, help="only these metrics (comma list)")
    p.add_argument("--eval-key", default=None, help="only this evaluation config (default: all)")
    p.add_argument("--format", choices=FORMATS, default=None, help="default: from the --out suffix")
    p.add_argument("--out", required=True, help="output file")


def run(args: argparse.Namespace) -> int:
    from backend.export import export_bytes, write_table
    from backend.queries import comparison_table, level_metrics

    tree_ids, zoo_ids = flatten(args.tree), flatten(args.zoo)
    check_selection(tree_ids, zoo_ids, None if args.table in ("curves", "barriers") else args.eval_key)
    if args.table in ("curves", "barriers"):
        table = _curve_table(args, tree_ids)
        out = Path(args.out)
        path = write_table(table, out) if args.format is None else atomic_write_bytes(out, export_bytes(table, args.format))
        print(f"wrote {len(table)} rows to {path}")
        return 0
    if not tree_ids and not zoo_ids:
        raise ValueError("choose what to export with --tree and/or --zoo")
    df = level_metrics(tree_ids=tree_ids or None, zoo_ids=zoo_ids or None, eval_key=args.eval_key)
    if df.empty:
        raise ValueError("nothing to export: those trees/zoos have no evaluations yet (run `evaluate` first)")
    if args.metrics:
        df = df[df["metric"].isin(args.metrics)]
        if df.empty:
            raise ValueError(f"none of the metrics {', '.join(args.metrics)} was evaluated there")
    if args.table == "wide":  # the paper table: group × level rows, 'mean ± std (n)' per metric with units
        from backend.queries import paper_table

        table = paper_table(comparison_table(df))
    else:
        table = comparison_table(df) if args.table == "comparison" else df
    out = Path(args.out)
    if args.format is None:
        path = write_table(table, out)
    else:
        path = atomic_write_bytes(out, export_bytes(table, args.format))
    print(f"wrote {len(table)} rows to {path}")
    return 0


def check_selection(tree_ids, zoo_ids, eval_key: str | None) -> None:
    """Every tree exists and is complete, every zoo exists, the evaluation config is stored: ValueError
    with one sentence otherwise (an incomplete tree is never exported as if it were a result)."""
    from store import evaluations as store_evals
    from store import trees as store_trees
    from store import zoos as store_zoos
    from store.db import connect

    with connect():
        for tree_id in tree_ids:
            tree = store_trees.get_tree(tree_id)
            if tree is None:
                raise ValueError(f"tree {tree_id} does not exist")
            if tree.get("root_model_id") is None:
                raise ValueError(f"tree {tree_id} is incomplete (no root yet): its merge is still running or was "
                                 "interrupted; rerun the same merge to finish it, then export")
        for zoo_id in zoo_ids:
            if store_zoos.get_zoo(zoo_id) is None:
                raise ValueError(f"zoo {zoo_id} does not exist")
        if eval_key is not None:
            known = [str(k) for k in store_evals.list_eval_configs()["key"]]
            if eval_key not in known:
                raise ValueError(f"there is no evaluation config {eval_key!r}; stored configs: "
                                 + (", ".join(known) if known else "none yet (run `evaluate` first)"))


def _curve_table(args: argparse.Namespace, tree_ids):
    from backend.curve_queries import barrier_table, tree_curves
    from store.curves import curves

    rows = tree_curves(tree_ids, args.curve_key) if tree_ids else curves(curve_key=args.curve_key)
    if rows.empty:
        raise ValueError("nothing to export: no interpolation curves stored there (run `interpolate` first)")
    return barrier_table(rows) if args.table == "barriers" else rows
