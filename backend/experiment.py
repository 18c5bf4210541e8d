"""The study in one click: presets that reproduce hierarchical Re-Basin end to end, as one resumable job.

An experiment (Franke et al., "Robustness and Regularization in Hierarchical Re-Basin", arXiv 2510.09174)
is: a plain zoo whose models are cut into disjoint leaf groups (T trees of 4 leaves, T of 8, ...); an
L1- and an L2-regularised zoo of the same training config as unmerged references; for every leaf group
the hierarchical merge, MergeMany and naive averaging over the *same* leaves (so the comparison is paired);
every model and node evaluated with one EvalConfig; a report with the study's figures and tables.

This module is the plan only (pure: presets, overrides, validation); the job that runs a plan is
backend/jobs/experiment.py, whose steps cache by key (zoos, trees, evaluations), so rerunning an
interrupted experiment recomputes nothing that finished. Estimates: see backend/estimate/.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass

from backend.datasets import DATASETS
from backend.merge.registry import ALIGNMENT_OPTIONS, OPTIONS, STUDY_METHODS, check_options
from backend.metrics import ALL_METRICS
from backend.options import Config, check_field, declared_field, option

METHODS = STUDY_METHODS  # every tree group is merged with each of these (backend.merge.registry: in_study)
MAX_EXPERIMENT_MODELS = 10_000


def _is_count(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _trees_ok(trees) -> bool:
    return isinstance(trees, tuple) and bool(trees) and all(
        isinstance(t, tuple) and len(t) == 2 and _is_count(t[0], 1) and _is_count(t[1], 2) for t in trees)


def _eval_ok(value) -> bool:
    """A dict of EvalConfig fields (the preset's, merged with the user's); EvalConfig says what is wrong in it."""
    if not isinstance(value, dict):
        return False
    from backend.evaluate.config import EvalConfig

    EvalConfig.from_dict(value)
    return True


def _variants_ok(variants) -> bool:
    if not isinstance(variants, tuple) or not all(isinstance(v, dict) and v and set(v) <= set(ALIGNMENT_OPTIONS)
                                                  for v in variants):
        return False
    for variant in variants:
        check_options(variant)  # the merge registry's sentence for a bad value
    return True


def _connectivity_ok(value) -> bool:
    if not isinstance(value, dict):
        return False
    from backend.connectivity_config import ConnectivityConfig

    ConnectivityConfig.from_dict(value)
    return True


@dataclass(frozen=True)
class ExperimentPlan(Config):
    """Everything an experiment trains, merges and evaluates (a preset plus the user's overrides), declared once
    (backend/options.py): its validation, to_dict/from_dict and the `experiment` command's flags derive from it."""

    config_name = "experiment"

    preset: str = option(MISSING, "the preset the plan starts from", internal=True, suggest="custom")
    dataset: str = option("fashion_mnist", "dataset", choices=DATASETS)
    widths: tuple[int, ...] = option((512, 512, 512, 256), "hidden widths, comma separated", label="Hidden widths",
                                     low=1, nonempty=True)
    epochs: int = option(10, "training epochs of every zoo", low=1)
    batch_size: int = option(512, "training batch size", low=1)
    lr: float = option(1e-3, "learning rate (Adam)", label="Learning rate", above=0.0)
    train_subset: int | None = option(None, "train on the first N training samples", low=1,
                                      none="the whole train split")
    augment: bool | None = option(None, "random crop + flip", none="the dataset's default: on for CIFAR-10 only")
    trees: tuple[tuple[int, int], ...] = option(
        ((2, 4), (2, 8)), 'leaf groups: [number of trees, leaves per tree] pairs, e.g. "[[2,4],[1,8]]"; every tree '
        "gets its own leaves", shape="a list of [number of trees >= 1, leaves per tree >= 2] pairs (at least one)",
        check=_trees_ok)
    reg_models: int = option(8, "models in each of the L1 and L2 zoos", label="Models per L1/L2 zoo", low=1)
    l1_strength: float = option(1e-5, "penalty weight of the L1 zoo", label="L1 strength", low=0.0)
    l2_strength: float = option(1e-4, "penalty weight of the L2 zoo", label="L2 strength", low=0.0)
    lam: float = option(OPTIONS["lam"].default, OPTIONS["lam"].help, label="λ", low=0.0, high=1.0)
    seed: int = option(0, "base seed of the zoos and of the merges", low=0)
    eval: dict = option({}, 'evaluation settings (EvalConfig fields; {} = the full protocol), e.g. {"subset": 300}; '
                        "an override merges into the preset's", label="Evaluation settings",
                        shape="a JSON object of evaluation settings", check=_eval_ok)
    variants: tuple[dict, ...] = option(
        (), "extra hierarchical trees over every group's same leaves, one per object of alignment options, e.g. "
        '[{"repair": true}, {"matcher": "activation"}]',
        shape=f"a list of non-empty objects of {', '.join(ALIGNMENT_OPTIONS)}", check=_variants_ok)
    connectivity: dict | None = option(
        None, "connectivity settings (ConnectivityConfig fields): curves of every hierarchical node's parents",
        none="no curves", shape="a JSON object of connectivity settings", check=_connectivity_ok)
    note: str = option("", "what the preset is for", internal=True)

    def check(self) -> None:
        """The zoos' train configs (widths against the dataset, ...) and the number of models to train."""
        for reg in ("none", "l1", "l2"):
            self.train_dict(reg)  # TrainConfig's sentence
        if self.n_trained > MAX_EXPERIMENT_MODELS:
            raise ValueError(f"the plan trains {self.n_trained:,} models; at most {MAX_EXPERIMENT_MODELS:,} are "
                             "allowed")

    @property
    def n_leaves(self) -> int:
        """Models in the plain zoo: every tree gets its own leaves."""
        return sum(t * n for t, n in self.trees)

    @property
    def n_trained(self) -> int:
        return self.n_leaves + 2 * self.reg_models

    def leaf_groups(self) -> list[tuple[int, int]]:
        """(start, leaves) of each tree's slice of the plain zoo, in order."""
        out, start = [], 0
        for count, leaves in self.trees:
            for _ in range(count):
                out.append((start, leaves))
                start += leaves
        return out

    def train_dict(self, reg: str = "none") -> dict:
        """A TrainConfig dict for the plain (reg="none"), L1 or L2 zoo; normalised by TrainConfig."""
        strength = {"none": 0.0, "l1": self.l1_strength, "l2": self.l2_strength}[reg]
        raw = {"dataset": self.dataset, "widths": list(self.widths), "epochs": self.epochs,
               "batch_size": self.batch_size, "optimizer": "adam", "lr": self.lr, "reg": reg,
               "reg_strength": strength, "augment": self.augment, "train_subset": self.train_subset}
        from backend.train_config import TrainConfig

        return TrainConfig.from_dict(raw).to_dict()

    def eval_config(self):
        from backend.evaluate.config import EvalConfig

        return EvalConfig.from_dict(dict(self.eval))


# The bracket preset (issue 12) adds a strong attack and a certificate under L∞ to the default protocol; any other
# preset takes them as an override: --overrides '{"eval": {"metrics": [...default..., "apgd_linf", "certified_linf"]}}'.
BRACKET_METRICS = ("apgd_linf", "certified_linf")

# The small presets evaluate a recorded test subset with the full metric set; "paper" uses the protocol's
# defaults (whole test split, 11-point grids). Regularisation strengths are penalty weights on the loss.
PRESETS: dict[str, ExperimentPlan] = {
    "demo": ExperimentPlan(
        preset="demo", widths=(256, 128), epochs=2, trees=((1, 4), (1, 8)), reg_models=2,
        eval={"subset": 300, "lipschitz_points": 20},
        note="a first look: 1 tree of 4 and 1 of 8 leaves, 2 epochs"),
    "quick": ExperimentPlan(
        preset="quick", widths=(512, 256), epochs=3, trees=((3, 4), (2, 8)), reg_models=4,
        eval={"subset": 500, "lipschitz_points": 30},
        note="every figure with some spread: 3 trees of 4 and 2 of 8 leaves, 3 epochs"),
    "standard": ExperimentPlan(
        preset="standard", widths=(512, 512, 512, 256), epochs=5, trees=((8, 4), (4, 8)), reg_models=8,
        eval={"subset": 1000, "lipschitz_points": 50},
        note="the default MLP with enough trees for variance: 8 trees of 4 and 4 of 8 leaves, 5 epochs"),
    "explain": ExperimentPlan(
        preset="explain", widths=(256, 128), epochs=2, trees=((2, 4), (1, 8)), reg_models=2,
        eval={"subset": 500, "lipschitz_points": 20},
        variants=({"repair": True}, {"matcher": "activation"}, {"matcher": "activation", "repair": True}),
        connectivity={"lam_grid": [round(i / 10, 4) for i in range(11)], "aligns": ["none", "weight", "activation"],
                      "repair": True, "images": 2048, "test_subset": 1000},
        note="why merges lose accuracy: hierarchical trees with and without REPAIR, with each matcher, over the "
             "same leaves, and the loss barrier of every merged node's parents"),
    "bracket": ExperimentPlan(
        preset="bracket", widths=(256, 128), epochs=2, trees=((2, 4), (1, 8)), reg_models=2,
        eval={"subset": 300, "lipschitz_points": 20, "metrics": [*ALL_METRICS, *BRACKET_METRICS]},
        note="robustness claims from both sides: the demo-sized study plus APGD (CE + DLR, 100 steps) and CROWN "
             "certification under L∞, so the report states per level a certified ≤ true ≤ attacked bracket"),
    "paper": ExperimentPlan(
        preset="paper", dataset="cifar10", widths=(512, 512, 512, 256), epochs=10,
        trees=((100, 4), (100, 8)), reg_models=200,
        note="the study's scale: 1 200 zoo models in 100 trees of 4 and 100 of 8, plus 200 L1 and 200 L2 "
             "models (1 600 trained), CIFAR-10, default widths, full protocol — for a GPU or a cluster"),
}


def trees_text(trees) -> str:
    """((1, 4), (2, 8)) -> '1 tree of 4 + 2 of 8' (leaves per tree)."""
    parts = [f"{t} {'tree' if t == 1 else 'trees'} of {n}" if i == 0 else f"{t} of {n}"
             for i, (t, n) in enumerate(trees)]
    return " + ".join(parts)


def plan_for(preset: str, dataset: str | None = None, overrides: dict | None = None) -> ExperimentPlan:
    """The preset's plan with the chosen dataset and the user's overrides applied, checked as a whole (its train
    configs, merge settings and evaluation config) before anything runs; ValueError with one sentence naming the
    field. Allocates no model."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    overrides = dict(overrides or {})
    for name in ("preset", "dataset"):
        if name in overrides:
            raise ValueError(f"choose the {name} with --{name}, not in --overrides")
    d = PRESETS[preset].to_dict()
    if dataset is not None:
        d["dataset"] = dataset
    if "eval" in overrides:  # merged into the preset's, so it must be an object first
        if not isinstance(overrides["eval"], dict):
            check_field(declared_field(ExperimentPlan, "eval"), overrides["eval"])
        overrides["eval"] = {**d["eval"], **overrides["eval"]}
    return ExperimentPlan.from_dict({**d, **overrides})


def spec_plan(spec) -> ExperimentPlan:
    return plan_for(spec.preset, spec.dataset, spec.overrides)
