"""Merge methods and their options, declared once: the one place jobs, the CLI, the UI and the report read.

A method is one file with a function `(leaves, *, progress=None, max_iter=100, **its options) ->
list[TreeNode]` (leaves first, root last; `backend/merge/tree.py: flat_nodes` builds the one-root shape of
MergeMany and averaging, whose root sits at level ceil(log2 n) so levels line up across methods) plus one
`MergeMethod` entry below naming it as "module:function" (imported only when the method runs, so this
module stays torch-free and the CLI's `--help` stays fast).

An option is one `MergeOption` entry: its default, labels, CLI/UI shape and check. A method lists the
options it takes; exactly those (plus the method's version, when above 1) name its tree in the store, so
a setting a method ignores never splits its cache, and bumping `version` recomputes that method's trees
only. Adding an option: one entry in OPTIONS, one field of the same name and default on
`backend.jobs.spec.MergeSpec`, and its name in the `options` of the methods that take it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backend.merge.errors import MergeError

PAIRINGS = ("as_listed", "random")  # the built-in pairings of backend.merge.tree.plan_tree


def _check_lam(value: Any, n_leaves: int | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise MergeError(f"lam must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_seed(value: Any, n_leaves: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MergeError(f"the seed must be an integer >= 0, got {value!r}")
    return value


def _check_pairing(value: Any, n_leaves: int | None = None) -> Any:
    if isinstance(value, str):
        if value not in PAIRINGS:
            raise MergeError(f"pairing must be one of {', '.join(PAIRINGS)} or a list of levels, got {value!r}")
        return value
    if n_leaves is not None:
        from backend.merge.tree import plan_tree

        plan_tree(n_leaves, [list(map(list, level)) for level in value], 0)
    return value


def _pairing_key(value: Any) -> Any:
    """Tuples and lists name the same pairing: the key sees JSON lists."""
    return value if isinstance(value, str) else [[list(pair) for pair in level] for level in value]


@dataclass(frozen=True)
class MergeOption:
    """One setting a merge method can take."""

    name: str  # the keyword the method function takes and the MergeSpec field
    default: Any
    label: str  # UI label
    help: str  # CLI help (one line)
    check: Callable[[Any, int | None], Any]  # (value, number of leaves or None) -> value; MergeError if bad
    key: Callable[[Any], Any] = lambda value: value  # the JSON value that enters a tree's key
    choices: tuple | None = None  # named choices (CLI choices, UI select box); None = free value
    bounds: tuple[float, float, float] | None = None  # (low, high, step) for a UI slider
    cli_type: Callable[[str], Any] | None = None  # argparse type; None = str (or bool flag for bool defaults)


OPTIONS: dict[str, MergeOption] = {o.name: o for o in (
    MergeOption("lam", 0.5, "λ (interpolation weight of the aligned model)",
                "interpolation weight of the aligned model", _check_lam, bounds=(0.0, 1.0, 0.05), cli_type=float),
    MergeOption("pairing", "as_listed", "Pairing of the hierarchical tree", "how leaves are paired per level",
                _check_pairing, key=_pairing_key, choices=PAIRINGS),
    MergeOption("seed", 0, "Seed (matching order, random pairing)", "seed of the matching order and random pairing",
                _check_seed, cli_type=int),
)}


@dataclass(frozen=True)
class MergeMethod:
    """A merge method: what the user sees, what it takes, what runs, and its version."""

    name: str  # stored as the tree's method and the merged models' kind
    label: str  # UI picker label
    short: str  # in legends, series and report tables
    run: str  # "module:function" -> list[TreeNode]
    options: tuple[str, ...] = ()  # keys of OPTIONS this method takes
    version: int = 1  # bump when the method's numbers change: its trees get new keys and are rebuilt
    description: str = ""
    in_study: bool = False  # part of the default comparison: experiment presets and the Merge builder's default

    def function(self) -> Callable[..., list]:
        module, _, attr = self.run.partition(":")
        return getattr(importlib.import_module(module), attr)

    def tree_config(self, values: Mapping[str, Any]) -> dict:
        """The settings that name this method's tree: its options' key values, and its version when > 1
        (version 1 adds nothing, so trees stored before versions existed keep their keys)."""
        config = {name: OPTIONS[name].key(values.get(name, OPTIONS[name].default)) for name in self.options}
        if self.version != 1:
            config["version"] = self.version
        return config

    def __call__(self, leaves: Sequence, *, progress=None, max_iter: int = 100, **values) -> list:
        """Run on state dicts; options this method does not take are checked, then ignored."""
        for name, value in values.items():
            if name not in OPTIONS:
                raise MergeError(f"unknown merge option {name!r}; options are {', '.join(OPTIONS)}")
            OPTIONS[name].check(value, None)
        taken = {name: values.get(name, OPTIONS[name].default) for name in self.options}
        return self.function()(leaves, progress=progress, max_iter=max_iter, **taken)


MERGE_METHODS: dict[str, MergeMethod] = {m.name: m for m in (
    MergeMethod("hierarchical", "Hierarchical Re-Basin", "hierarchical", "backend.merge.tree:hierarchical_merge",
                ("lam", "pairing", "seed"), in_study=True,
                description="pairwise weight matching level by level (2ⁿ → 2ⁿ⁻¹ → … → 1), every node kept"),
    MergeMethod("merge_many", "MergeMany", "MergeMany", "backend.merge.merge_many:merge_many_nodes", ("seed",),
                in_study=True, description="align every model to the mean of the others, repeat; one root"),
    MergeMethod("average", "Naive average (no alignment)", "naive average", "backend.merge.average:average_nodes",
                in_study=True, description="elementwise mean without permutation: the baseline"),
)}
STUDY_METHODS = tuple(name for name, m in MERGE_METHODS.items() if m.in_study)  # what an experiment merges with


def get_method(name: str) -> MergeMethod:
    if name not in MERGE_METHODS:
        raise MergeError(f"unknown merge method {name!r}; choose one of {sorted(MERGE_METHODS)}")
    return MERGE_METHODS[name]


def method_label(name: str) -> str:
    """The picker label of a method (the name itself for a method not registered, e.g. an old row)."""
    return MERGE_METHODS[name].label if name in MERGE_METHODS else name


def method_short(name: str) -> str:
    """The legend/report label of a method."""
    return MERGE_METHODS[name].short if name in MERGE_METHODS else name


def check_options(values: Mapping[str, Any], n_leaves: int | None = None) -> dict:
    """Every option checked (ValueError with one sentence); returns the checked values."""
    return {name: OPTIONS[name].check(values.get(name, OPTIONS[name].default), n_leaves) for name in OPTIONS}


def methods_help() -> str:
    """One line for `--method`: every name with what it is."""
    return "; ".join(f"{m.name} = {m.label}" for m in MERGE_METHODS.values())
