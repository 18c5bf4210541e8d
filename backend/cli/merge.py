"""`python -m backend merge`: build merge trees over stored models (methods and options: backend.merge.registry)."""

from __future__ import annotations

import argparse

from backend.cli.common import (
    add_eval_options,
    add_run_options,
    eval_config_from_args,
    flatten,
    int_list,
    name_list,
    positive_int,
    run_spec,
)
from backend.merge.registry import MERGE_METHODS, OPTIONS, methods_help


def register(subparsers) -> None:
    p = subparsers.add_parser("merge", help="merge stored models into trees",
                              description="Merge the leaves with each method; every node is stored (and, "
                                          "with --evaluate, evaluated). Trees already built are reused.")
    leaves = p.add_mutually_exclusive_group(required=True)
    leaves.add_argument("--zoo", type=positive_int, help="merge the trained models of this zoo (in seed order)")
    leaves.add_argument("--models", type=int_list, help="model ids in leaf order, comma separated")
    p.add_argument("--leaves", type=positive_int, default=None, help="with --zoo: only its first N models")
    p.add_argument("--method", type=name_list, action="append", default=None,
                   help=f"{'|'.join(MERGE_METHODS)}; repeatable or a comma list (default hierarchical). "
                        f"{methods_help()}")
    add_merge_options(p)
    p.add_argument("--pairs", default=None,
                   help="custom pairing instead of --pairing: one level per ';', pairs of positions in the "
                        "level below, e.g. '0-2,1-3;0-1' (a lone index carries a node up)")
    p.add_argument("--evaluate", action="store_true", help="evaluate every node (and leaf) afterwards")
    add_eval_options(p)
    add_run_options(p)


def add_merge_options(parser: argparse.ArgumentParser) -> None:
    """One option per registered merge option: --NAME with its default, type, choices and help."""
    for option in OPTIONS.values():
        users = [m.name for m in MERGE_METHODS.values() if option.name in m.options]
        kwargs = {"default": option.default,
                  "help": f"{option.help} (used by {', '.join(users) or 'no method'}; default {option.default})"}
        flag = f"--{option.name.replace('_', '-')}"
        if isinstance(option.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif option.choices is not None:
            parser.add_argument(flag, choices=option.choices, **kwargs)
        else:
            parser.add_argument(flag, type=option.cli_type or str, **kwargs)


def resolve_leaves(args: argparse.Namespace) -> list[int]:
    from backend.jobs.train_step import zoo_model_ids

    if args.models:
        if args.leaves is not None:
            raise ValueError("--leaves only applies to --zoo")
        return list(args.models)
    ids = zoo_model_ids(args.zoo)
    if args.leaves is not None:
        if args.leaves > len(ids):
            raise ValueError(f"zoo {args.zoo} has {len(ids)} models, fewer than --leaves {args.leaves}")
        ids = ids[:args.leaves]
    return ids


def run(args: argparse.Namespace) -> int:
    from backend.jobs.spec import MergeSpec
    from backend.merge.tree import parse_pairing

    methods = tuple(flatten(args.method)) or ("hierarchical",)
    values = {name: getattr(args, name) for name in OPTIONS}
    if args.pairs:
        values["pairing"] = parse_pairing(args.pairs)
    spec = MergeSpec(model_ids=tuple(resolve_leaves(args)), methods=methods, **values,
                     evaluate=eval_config_from_args(args) if args.evaluate else None)
    code, result = run_spec(spec, args)
    if result:
        for method, tree_id, root in zip(methods, result["tree_ids"], result["root_model_ids"], strict=True):
            print(f"tree {tree_id} ({method}): root model {root}")
        if "evaluated" in result:
            print(f"evaluated {result['evaluated']} models")
    return code
