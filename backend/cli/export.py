"""`python -m backend export`: per-level metrics of trees / zoos as CSV, Parquet, Markdown or LaTeX tables, and
Compare's charts as SVG / PNG / PDF files, grouped and split exactly as Compare groups them."""

from __future__ import annotations

import argparse
from pathlib import Path

from backend.cli.common import flatten, int_list, name_list
from store.files import atomic_write_bytes

FORMATS = ("csv", "parquet", "markdown", "latex")
FIGURE_FORMATS = ("svg", "png", "pdf")  # backend.figures.FIGURE_FORMATS (not imported here: --help stays light)
# backend.levels.SETTINGS minus "method" (always split); tests/jobs/test_cli.py checks the two agree
SPLIT_SETTINGS = ("leaves", "lam", "pairing", "seed", "zoo", "dataset", "widths", "reg")


def _formats(text: str) -> list[str]:
    values = name_list(text)
    bad = [v for v in values if v not in FIGURE_FORMATS]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"figure formats are {', '.join(FIGURE_FORMATS)}, got {text!r}")
    return values


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export level metrics as a table, Compare's charts as figures",
                              description="Export evaluation rows of trees and zoos, tagged with their "
                                          "merge level: long rows (--table levels), mean/std/n per level and "
                                          "metric (--table comparison) or the paper table (--table wide); with "
                                          "--figures, every chart Compare draws for the selection as files. "
                                          "Statistics are Compare's: every tree's leaves are one 'unmerged "
                                          "leaves' group, carried nodes are left out, n counts distinct models.")
    p.add_argument("--tree", type=int_list, action="append", default=None, help="tree ids (repeatable)")
    p.add_argument("--zoo", type=int_list, action="append", default=None, help="zoo ids as references")
    p.add_argument("--table", choices=("levels", "comparison", "wide", "curves", "barriers"), default="levels",
                   help="levels/comparison: evaluations (long); wide: the paper table, one row per group × level, "
                        "'mean ± std (n)' per metric with units; curves: interpolation rows of every merged node's "
                        "parent pair (with --tree; all stored curves without); barriers: one row per curve")
    p.add_argument("--curve-key", default=None, help="curves/barriers: only this connectivity config")
    p.add_argument("--metrics", type=name_list, default=None, help="only these metrics (comma list)")
    p.add_argument("--eval-key", default=None,
                   help="only this evaluation config (levels: default all; comparison, wide and figures: default "
                        "the config with the most of the selected models, as Compare picks it)")
    p.add_argument("--split", type=name_list, default=[],
                   help="split and colour series by these recorded settings, as Compare's 'Split and colour "
                        f"series by' (comma list of {', '.join(SPLIT_SETTINGS)}); levels: adds them as columns")
    p.add_argument("--format", choices=FORMATS, default=None, help="default: from the --out suffix")
    p.add_argument("--out", default=None, help="table file (required unless --figures is given)")
    p.add_argument("--figures", default=None, metavar="DIR",
                   help="also write every chart Compare draws for the selection into DIR (one file per chart "
                        "and format: accuracy.svg, fgsm_acc.pdf, bracket-linf.png, methods-accuracy.svg, …)")
    p.add_argument("--figure-format", type=_formats, default=list(FIGURE_FORMATS),
                   help="comma list of svg, png, pdf (default: all three)")
    p.add_argument("--log-y", action="store_true", help="figures: log-scale y axes")
    p.add_argument("--include-zero", action="store_true", help="figures: start every y axis at zero")
    p.add_argument("--each-model", action="store_true",
                   help="figures: draw every tree model's own robustness curve behind its series' mean")


def run(args: argparse.Namespace) -> int:
    tree_ids, zoo_ids = flatten(args.tree), flatten(args.zoo)
    if args.out is None and args.figures is None:
        raise ValueError("say where to write with --out FILE (a table) and/or --figures DIR (the charts)")
    check_selection(tree_ids, zoo_ids, None if args.table in ("curves", "barriers") else args.eval_key)
    if args.table in ("curves", "barriers"):
        if args.out is None:
            raise ValueError(f"--table {args.table} writes a table: give --out FILE")
        _write(_curve_table(args, tree_ids), args)
        return 0
    if not tree_ids and not zoo_ids:
        raise ValueError("choose what to export with --tree and/or --zoo")
    from backend.levels import SETTINGS

    bad = [s for s in args.split if s not in SETTINGS or s == "method"]
    if bad:
        raise ValueError(f"cannot split by {', '.join(bad)}: choose from {', '.join(SPLIT_SETTINGS)} "
                         "(series are always split by method)")
    wants_summary = args.figures is not None or (args.out is not None and args.table != "levels")
    key = _eval_key(args, tree_ids, zoo_ids) if wants_summary else None
    if args.out is not None:
        if args.table == "levels":
            _write(_levels_table(args, tree_ids, zoo_ids), args)
        else:
            summary = _summary(args, tree_ids, zoo_ids, key)
            if args.table == "wide":  # the paper table: group × level rows, 'mean ± std (n)' per metric, units
                from backend.tables import paper_table

                summary = paper_table(summary)
            _write(summary, args)
    if args.figures is not None:
        _write_figures(args, tree_ids, zoo_ids, key)
    return 0


def _write(table, args: argparse.Namespace) -> None:
    from backend.export import export_bytes, write_table

    out = Path(args.out)
    path = write_table(table, out) if args.format is None else atomic_write_bytes(out, export_bytes(table, args.format))
    print(f"wrote {len(table)} rows to {path}")


def _levels_table(args: argparse.Namespace, tree_ids, zoo_ids):
    """Long rows, every config unless --eval-key; the --split settings as extra columns."""
    from backend.levels import SETTINGS, level_members, level_metrics, member_settings

    df = level_metrics(tree_ids=tree_ids or None, zoo_ids=zoo_ids or None, eval_key=args.eval_key)
    if df.empty:
        raise ValueError("nothing to export: those trees/zoos have no evaluations yet (run `evaluate` first)")
    if args.metrics:
        df = df[df["metric"].isin(args.metrics)]
        if df.empty:
            raise ValueError(f"none of the metrics {', '.join(args.metrics)} was evaluated there")
    if args.split:
        members = member_settings(level_members(tree_ids=tree_ids or None, zoo_ids=zoo_ids or None))
        keys = ["model_id", "tree_id", "method", "level"]
        settings = members[keys + list(args.split)].rename(columns={s: SETTINGS[s] for s in args.split})
        df = df.merge(settings.assign(tree_id=settings["tree_id"].astype("Int64")), on=keys, how="left")
    return df


def _eval_key(args: argparse.Namespace, tree_ids, zoo_ids) -> str:
    """--eval-key, else the config with the most of the selected models (Compare's default), said aloud."""
    import sys

    from backend.labels import eval_config_labels
    from backend.levels import eval_keys, level_members

    keys = eval_keys(level_members(tree_ids=tree_ids or None, zoo_ids=zoo_ids or None))
    if keys.empty:
        raise ValueError("nothing to export: those trees/zoos have no evaluations yet (run `evaluate` first)")
    if args.eval_key is not None:
        if args.eval_key not in set(keys["eval_key"]):
            raise ValueError(f"the selection has no results in evaluation config {args.eval_key}; it has "
                             + ", ".join(keys["eval_key"]))
        return args.eval_key
    key = str(keys["eval_key"].iloc[0])
    if len(keys) > 1:
        label = eval_config_labels(keys.head(1)).get(key, key)
        print(f"note: the selection has results in {len(keys)} evaluation configs; using {key} ({label}); "
              "choose another with --eval-key", file=sys.stderr)
    return key


def _summary(args: argparse.Namespace, tree_ids, zoo_ids, eval_key: str):
    from backend.levels import selection_summary

    summary = selection_summary(tree_ids, zoo_ids, eval_key, args.split, args.metrics)
    if summary.empty:
        what = f"the metrics {', '.join(args.metrics)}" if args.metrics else "any metric"
        raise ValueError(f"nothing to export: no results for {what} there in that evaluation config")
    return summary


def _write_figures(args: argparse.Namespace, tree_ids, zoo_ids, eval_key: str) -> None:
    from backend.charts import compare_figures
    from backend.figures import figure_bytes
    from backend.levels import selection_points

    summary = _summary(args, tree_ids, zoo_ids, eval_key)
    points = selection_points(tree_ids, eval_key, args.metrics, args.split)
    folder = Path(args.figures)
    figures = compare_figures(summary, points, log=args.log_y, zero=args.include_zero, models=args.each_model)
    for stem, spec in figures.items():
        for fmt in args.figure_format:
            atomic_write_bytes(folder / f"{stem}.{fmt}", figure_bytes(spec, fmt))
    print(f"wrote {len(figures)} figures × {len(args.figure_format)} formats to {folder}")


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
