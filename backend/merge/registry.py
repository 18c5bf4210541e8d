"""Merge methods and their options, declared once: the one place jobs, the CLI, the UI and the report read.

A method is one file with a function `(leaves, *, progress=None, max_iter=100, **its options) ->
list[TreeNode]` (leaves first, root last; `backend/merge/tree.py: flat_nodes` builds the one-root shape of
MergeMany and averaging, whose root sits at level ceil(log2 n) so levels line up across methods) plus one
`MergeMethod` entry below naming it as "module:function" (imported only when the method runs, so this
module stays torch-free and the CLI's `--help` stays fast).

An option is one `MergeOption` entry: its default, labels, CLI/UI shape and check. A method lists the
options it takes; exactly those (plus the method's version, when above 1) name its tree in the store, so
a setting a method ignores never splits its cache, and bumping `version` recomputes that method's trees
only. Adding an option: one entry in OPTIONS and its name in the `options` of the methods that take it;
`backend.jobs.spec.MergeSpec` gets a field of that name and default from the entry (after the existing ones),
the CLI a flag and the Merge builder a widget.

An option with `in_key` enters a tree's key only when in_key(values) holds (the matcher and REPAIR options
only when they differ from plain weight matching, so trees stored before they existed keep their keys; the
image-batch options only when a matcher or REPAIR uses the batch). Options with `to_function=False` describe
the image batch: the job reads them to load the images once (backend.connectivity.image_batch) and passes the
tensor as `images=` to methods that take "matcher" or "repair".
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backend.merge.errors import MergeError

PAIRINGS = ("as_listed", "random")  # the built-in pairings of backend.merge.tree.plan_tree
MATCHERS = ("weight", "activation")  # backend.merge.alignment.MATCHERS
IMAGE_SPLITS = ("train", "test")
IMAGE_OPTIONS = ("n_images", "image_split", "image_seed")  # the batch for activation matching and REPAIR


def needs_images(values: Mapping[str, Any]) -> bool:
    """Whether these option values use the image batch (activation matching or REPAIR)."""
    return values.get("matcher", "weight") == "activation" or values.get("repair", False) is True


def alignment_suffix(values: Mapping[str, Any] | None) -> str:
    """' · activation matching', ' + REPAIR', both or '' for a tree config (so labels and Compare groups tell
    a hierarchical tree from its REPAIR / activation-matching variant over the same leaves)."""
    values = values or {}
    suffix = " · activation matching" if values.get("matcher", "weight") == "activation" else ""
    return suffix + (" + REPAIR" if values.get("repair") is True else "")


def _check_matcher(value: Any, n_leaves: int | None = None) -> str:
    if value not in MATCHERS:
        raise MergeError(f"matcher must be one of {', '.join(MATCHERS)}, got {value!r}")
    return value


def _check_repair(value: Any, n_leaves: int | None = None) -> bool:
    if not isinstance(value, bool):
        raise MergeError(f"repair must be true or false, got {value!r}")
    return value


def _check_n_images(value: Any, n_leaves: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise MergeError(f"the number of images for activation matching / REPAIR must be an integer >= 2, "
                         f"got {value!r}")
    return value


def _check_image_split(value: Any, n_leaves: int | None = None) -> str:
    if value not in IMAGE_SPLITS:
        raise MergeError(f"the image split must be one of {', '.join(IMAGE_SPLITS)}, got {value!r}")
    return value


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
    in_key: Callable[[Mapping[str, Any]], bool] | None = None  # None: always in the tree key of its methods
    to_function: bool = True  # False: read by the job (the image batch), not passed to the method function


OPTIONS: dict[str, MergeOption] = {o.name: o for o in (
    MergeOption("lam", 0.5, "λ (interpolation weight of the aligned model)",
                "interpolation weight of the aligned model", _check_lam, bounds=(0.0, 1.0, 0.05), cli_type=float),
    MergeOption("pairing", "as_listed", "Pairing of the hierarchical tree", "how leaves are paired per level",
                _check_pairing, key=_pairing_key, choices=PAIRINGS),
    MergeOption("seed", 0, "Seed (matching order, random pairing)", "seed of the matching order and random pairing",
                _check_seed, cli_type=int),
    MergeOption("matcher", "weight", "Matcher", "how hidden units are aligned: weight matching or activation "
                "matching (correlation of activations on the image batch)", _check_matcher, choices=MATCHERS,
                in_key=lambda v: v.get("matcher", "weight") != "weight"),
    MergeOption("repair", False, "REPAIR", "after each interpolation, rescale every hidden neuron to the "
                "interpolated statistics of the aligned parents on the image batch (Jordan et al. 2023)",
                _check_repair, in_key=lambda v: v.get("repair", False) is True),
    MergeOption("n_images", 4096, "Images for activation matching / REPAIR",
                "number of images in the batch activation matching and REPAIR use", _check_n_images,
                cli_type=int, in_key=needs_images, to_function=False),
    MergeOption("image_split", "train", "Split of those images", "which split the image batch is drawn from",
                _check_image_split, choices=IMAGE_SPLITS, in_key=needs_images, to_function=False),
    MergeOption("image_seed", 0, "Seed of the image draw", "seed of the image batch draw", _check_seed,
                cli_type=int, in_key=needs_images, to_function=False),
)}
ALIGNMENT_OPTIONS = ("matcher", "repair", *IMAGE_OPTIONS)


TYPICAL_MERGE_MANY_ROUNDS = 3  # rounds MergeMany typically runs until no improvement (for estimates)


def _no_matching(n_leaves: int) -> float:
    return 0.0


def _one_root(n_leaves: int) -> int:
    return 1


@dataclass(frozen=True)
class MergeMethod:
    """A merge method: what the user sees, what it takes, what runs, its version and its cost."""

    name: str  # stored as the tree's method and the merged models' kind
    label: str  # UI picker label
    short: str  # in legends, series and report tables
    run: str  # "module:function" -> list[TreeNode]
    options: tuple[str, ...] = ()  # keys of OPTIONS this method takes
    version: int = 1  # bump when the method's numbers change: its trees get new keys and are rebuilt
    description: str = ""
    in_study: bool = False  # part of the default comparison: experiment presets and the Merge builder's default
    # cost model (backend/estimate/cost.py): weight-matching problems a tree over n leaves solves nominally (each costs
    # Σ width³), and how many nodes it stores above the leaves (each is evaluated)
    matchings: Callable[[int], float] = _no_matching
    merged_nodes: Callable[[int], int] = _one_root

    def function(self) -> Callable[..., list]:
        module, _, attr = self.run.partition(":")
        return getattr(importlib.import_module(module), attr)

    def tree_config(self, values: Mapping[str, Any]) -> dict:
        """The settings that name this method's tree: its options' key values, and its version when > 1
        (version 1 adds nothing, so trees stored before versions existed keep their keys)."""
        config = {name: OPTIONS[name].key(values.get(name, OPTIONS[name].default)) for name in self.options
                  if OPTIONS[name].in_key is None or OPTIONS[name].in_key(values)}
        if self.version != 1:
            config["version"] = self.version
        return config

    def __call__(self, leaves: Sequence, *, progress=None, max_iter: int = 100, images=None, stored=None,
                 on_node=None, checkpoint=None, on_checkpoint=None, **values) -> list:
        """Run on state dicts; options this method does not take are checked, then ignored. `images`: the
        batch for activation matching / REPAIR (passed to methods that take "matcher" or "repair").

        Resuming, for the methods whose function takes these keywords (the others simply run again):
        `stored` {node index: params} of nodes an interrupted run stored, `checkpoint` a state the method
        handed to `on_checkpoint` (MergeMany: after each round). `on_node(node)` is called for every node
        built here (above the leaves) as soon as it exists; for a function that does not take it, after
        it returns."""
        for name, value in values.items():
            if name not in OPTIONS:
                raise MergeError(f"unknown merge option {name!r}; options are {', '.join(OPTIONS)}")
            OPTIONS[name].check(value, None)
        taken = {name: values.get(name, OPTIONS[name].default) for name in self.options if OPTIONS[name].to_function}
        if images is not None and {"matcher", "repair"} & set(self.options):
            taken["images"] = images
        function, accepts = self.function(), self.resume_keywords()
        resume = {name: value for name, value in (("stored", stored), ("on_node", on_node),
                                                  ("checkpoint", checkpoint), ("on_checkpoint", on_checkpoint))
                  if value is not None and name in accepts}
        nodes = function(leaves, progress=progress, max_iter=max_iter, **taken, **resume)
        if on_node is not None and "on_node" not in accepts:
            for node in nodes[len(leaves):]:
                if stored is None or node.index not in stored:  # a stored node was not built here
                    on_node(node)
        return nodes

    def resume_keywords(self) -> set[str]:
        """Which of stored / on_node / checkpoint / on_checkpoint the method's function takes."""
        import inspect

        return {"stored", "on_node", "checkpoint", "on_checkpoint"} & set(inspect.signature(self.function()).parameters)


MERGE_METHODS: dict[str, MergeMethod] = {m.name: m for m in (
    MergeMethod("hierarchical", "Hierarchical Re-Basin", "hierarchical", "backend.merge.tree:hierarchical_merge",
                ("lam", "pairing", "seed", *ALIGNMENT_OPTIONS), in_study=True,
                description="pairwise weight matching level by level (2ⁿ → 2ⁿ⁻¹ → … → 1), every node kept",
                matchings=lambda n: float(n - 1), merged_nodes=lambda n: n - 1),
    MergeMethod("merge_many", "MergeMany", "MergeMany", "backend.merge.merge_many:merge_many_nodes",
                ("seed", *ALIGNMENT_OPTIONS),
                in_study=True, description="align every model to the mean of the others, repeat; one root",
                matchings=lambda n: float(TYPICAL_MERGE_MANY_ROUNDS * n)),
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
