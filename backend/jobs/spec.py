"""Job specs: what a job does, as a small frozen JSON-able value.

A spec is everything a worker process needs to run a job (it travels through the jobs table as JSON),
and its key() names the work so identical requests can be recognised. Specs hold plain dicts for the
algorithm configs (TrainConfig / EvalConfig dicts) so this module stays import-light; validate() checks
them against the real config classes.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar

from backend.merge.registry import MERGE_METHODS, OPTIONS, check_options, get_method
from backend.options import (  # canonical_key: the one key function
    canonical_key,
    check_field,
    declared,
    option,
)

ZOO_KINDS = ("plain", "l1", "l2")


def _jsonable(value: Any) -> Any:
    """Tuples -> lists, recursively, so to_dict() round-trips through JSON unchanged."""
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


MAX_MODELS = 10_000  # models per zoo: bounded before any seed is generated or row created


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _train_samples(config) -> int:
    """Training samples per epoch of a TrainConfig (its subset, else the split's size; no data loaded)."""
    return config.train_subset or (50_000 if config.dataset == "cifar10" else 60_000)


def _check_dataset(dataset: Any) -> None:
    from backend.data import DATASETS

    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


def _check_model_ids(model_ids: Any, minimum: int) -> None:
    if not isinstance(model_ids, tuple | list) or len(model_ids) < minimum:
        raise ValueError(f"need at least {minimum} model id(s), got {list(model_ids or [])}")
    for mid in model_ids:
        _check_int("a model id", mid, 1)
    if len(set(model_ids)) != len(model_ids):
        raise ValueError(f"model ids must be distinct, got {list(model_ids)}")


def check_eval_config(config: dict) -> None:
    from backend.evaluate.config import EvalConfig

    if not isinstance(config, dict):
        raise ValueError("the evaluation config must be a dict of EvalConfig fields")
    EvalConfig.from_dict(config)


class _Spec:
    kind: ClassVar[str]

    def to_dict(self) -> dict:
        return {"kind": self.kind, **_jsonable(asdict(self))}

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names - {"kind"}
        if unknown:
            raise ValueError(f"unknown {cls.kind} spec field(s): {', '.join(sorted(unknown))}")
        return cls(**{k: v for k, v in d.items() if k in names})

    def key(self) -> str:
        return canonical_key(self.to_dict())


@dataclass(frozen=True)
class TrainSpec(_Spec):
    """Train a zoo: n_models seeds of one TrainConfig."""

    kind: ClassVar[str] = "train"
    name: str = option(MISSING, "zoo name (default: dataset-reg-N)", label="Zoo name", suggest="")
    train: dict  # TrainConfig.to_dict()
    n_models: int = option(MISSING, "number of models (seeds)", label="Number of models", flag="--n",
                           what="the number of models", low=1, suggest=4)
    base_seed: int = option(0, "base seed; model seeds are derived from it", label="Base seed", flag="--seed",
                            what="the base seed", low=0)
    zoo_kind: str = option("plain", "the zoo's kind, from the training penalty", what="zoo kind", choices=ZOO_KINDS,
                           internal=True)
    curve_every: int | None = option(None, "also record a training-curve point (loss and accuracy over the last N "
                                     "steps) every N training steps", label="Curve point every N steps",
                                     what="curve points every N steps", low=1, none="per epoch", step=10)

    MAX_CURVE_POINTS: ClassVar[int] = 1000  # per model: more would only slow the store and the charts down

    def to_dict(self) -> dict:
        """Without curve_every when it is off, so specs (and their keys) from before it existed stay equal."""
        d = super().to_dict()
        if self.curve_every is None:
            d.pop("curve_every")
        return d

    def validate(self) -> None:
        from backend.train_config import TrainConfig

        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("a zoo needs a non-empty name")
        for declaration in declared(self):
            check_field(declaration, getattr(self, declaration.name))
        if self.n_models > MAX_MODELS:
            raise ValueError(f"a zoo holds at most {MAX_MODELS:,} models, got {self.n_models:,}")
        if not isinstance(self.train, dict):
            raise ValueError("train must be a dict of TrainConfig fields")
        _check_dataset(self.train.get("dataset", "cifar10"))
        reg = TrainConfig.from_dict(self.train).reg
        if self.zoo_kind != {"none": "plain"}.get(reg, reg):
            raise ValueError(f"zoo kind {self.zoo_kind!r} does not match the training penalty reg={reg!r}")
        if self.curve_every is not None:  # its own range: checked with the other declared fields above
            config = TrainConfig.from_dict(self.train)
            points = config.epochs * -(-_train_samples(config) // config.batch_size) // self.curve_every
            if points > self.MAX_CURVE_POINTS:
                raise ValueError(f"a curve point every {self.curve_every} steps gives {points:,} points per model; "
                                 f"at most {self.MAX_CURVE_POINTS:,} are kept: choose a larger N")

    def train_config(self):
        from backend.train_config import TrainConfig

        return TrainConfig.from_dict(self.train)

    def zoo_key(self) -> str:
        """The zoo is named by its training config, seeds and kind, not by its display name."""
        return canonical_key({"train": self.train_config().key(), "n_models": self.n_models,
                              "base_seed": self.base_seed, "zoo_kind": self.zoo_kind})


def model_key(zoo_key: str, train_key: str, seed: int) -> str:
    """A trained model is named by its zoo, its training config and its seed (the train step's cache key)."""
    return canonical_key({"zoo": zoo_key, "train": train_key, "seed": seed})


def _merge_option_fields(after: str):
    """Class decorator, applied before @dataclass: one field per option of backend.merge.registry.OPTIONS, with
    its name and default, placed after the field `after`. OPTIONS stays the one declaration of the merge
    options, and the field order (hence to_dict() and key()) stays that of the specs stored before."""

    def add(cls):
        own = dict(cls.__dict__.get("__annotations__", {}))
        if after not in own or set(own) & set(OPTIONS):
            raise TypeError(f"{cls.__name__}: merge options need the field {after!r} to follow and names of "
                            f"their own, got fields {', '.join(own)}")
        annotations = {}
        for name, annotation in own.items():
            annotations[name] = annotation
            if name == after:
                for option in OPTIONS.values():
                    annotations[option.name] = "Any"
                    setattr(cls, option.name, option.default)
        cls.__annotations__ = annotations
        return cls

    return add


@dataclass(frozen=True)
@_merge_option_fields(after="methods")
class MergeSpec(_Spec):
    """Merge a list of models with one or more methods; optionally evaluate every node.

    Between methods and evaluate: one field per option of backend.merge.registry.OPTIONS (lam, pairing, seed,
    matcher, repair, n_images, ...), named and defaulted there; pairing is "as_listed" | "random" | levels of
    index pairs (held as tuples).
    """

    kind: ClassVar[str] = "merge"
    model_ids: tuple
    methods: tuple = ("hierarchical",)
    evaluate: dict | None = None  # EvalConfig.to_dict(), or None to skip evaluation

    def __post_init__(self):
        object.__setattr__(self, "model_ids", tuple(self.model_ids))
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        object.__setattr__(self, "methods", methods)
        if isinstance(self.pairing, list | tuple):
            object.__setattr__(self, "pairing", tuple(tuple(tuple(p) for p in level) for level in self.pairing))

    def validate(self) -> None:
        _check_model_ids(self.model_ids, 2)
        if not self.methods:
            raise ValueError("choose at least one merge method")
        for method in self.methods:
            if method not in MERGE_METHODS:
                raise ValueError(f"unknown merge method {method!r}; choose from {', '.join(MERGE_METHODS)}")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"merge methods are listed twice: {list(self.methods)}")
        check_options(self.option_values(), len(self.model_ids))
        if self.evaluate is not None:
            check_eval_config(self.evaluate)

    def option_values(self) -> dict:
        """Every registered merge option's value, by name (as the method functions take them)."""
        return {name: self.pairing_arg() if name == "pairing" else getattr(self, name) for name in OPTIONS}

    def pairing_arg(self):
        """The pairing as hierarchical_merge takes it (lists, not tuples)."""
        if isinstance(self.pairing, str):
            return self.pairing
        return [[list(pair) for pair in level] for level in self.pairing]


def tree_key(spec: MergeSpec, method: str) -> str:
    """Only the settings a method takes (and its version) name its tree: average ignores lam, pairing and seed."""
    return canonical_key({"method": method, "leaves": list(spec.model_ids), **tree_config(spec, method)})


def tree_config(spec: MergeSpec, method: str) -> dict:
    return get_method(method).tree_config(spec.option_values())


@dataclass(frozen=True)
class EvaluateSpec(_Spec):
    """Evaluate stored models with one evaluation config."""

    kind: ClassVar[str] = "evaluate"
    model_ids: tuple
    eval: dict = field(default_factory=dict)  # EvalConfig.to_dict()

    def __post_init__(self):
        object.__setattr__(self, "model_ids", tuple(self.model_ids))

    def validate(self) -> None:
        _check_model_ids(self.model_ids, 1)
        check_eval_config(self.eval)


@dataclass(frozen=True)
class ExperimentSpec(_Spec):
    """A whole preset experiment (train zoos, merge, evaluate, report); run by backend.experiment."""

    kind: ClassVar[str] = "experiment"
    preset: str
    dataset: str
    overrides: dict = field(default_factory=dict)

    def validate(self) -> None:
        if not isinstance(self.preset, str) or not self.preset:
            raise ValueError("an experiment needs a preset name")
        _check_dataset(self.dataset)
        if not isinstance(self.overrides, dict):
            raise ValueError("experiment overrides must be a dict")
        from backend.experiment import PRESETS

        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")


@dataclass(frozen=True)
class InterpolateSpec(_Spec):
    """Interpolation curves and barriers for model pairs and/or every merged node's parent pair of trees."""

    kind: ClassVar[str] = "interpolate"
    pairs: tuple = ()  # ((model_a, model_b), ...)
    tree_ids: tuple = ()
    config: dict = field(default_factory=dict)  # ConnectivityConfig.to_dict()

    def __post_init__(self):
        object.__setattr__(self, "pairs", tuple(tuple(p) for p in self.pairs))
        object.__setattr__(self, "tree_ids", tuple(self.tree_ids))

    def validate(self) -> None:
        from backend.connectivity import ConnectivityConfig

        if not self.pairs and not self.tree_ids:
            raise ValueError("choose at least one model pair or tree to interpolate")
        for pair in self.pairs:
            if len(pair) != 2:
                raise ValueError(f"a pair is two model ids, got {list(pair)}")
            _check_model_ids(pair, 2)
        for tree_id in self.tree_ids:
            _check_int("a tree id", tree_id, 1)
        if not isinstance(self.config, dict):
            raise ValueError("the connectivity config must be a dict of ConnectivityConfig fields")
        ConnectivityConfig.from_dict(self.config)


SPECS = {cls.kind: cls for cls in (TrainSpec, MergeSpec, EvaluateSpec, ExperimentSpec, InterpolateSpec)}
Spec = TrainSpec | MergeSpec | EvaluateSpec | ExperimentSpec | InterpolateSpec


EXECUTOR_FIELD = "executor"  # where a job runs: recorded beside the spec's fields, never in its key


def with_executor(spec_dict: dict, executor: dict | None) -> dict:
    """The spec dict a job row stores: the spec's fields plus, for anything but the local executor, where
    it runs ({"kind": "ray", "address": ...}). The spec's key() is unchanged: same work, same cache."""
    executor = {k: v for k, v in dict(executor or {}).items() if v not in (None, "")}
    if executor.get("kind", "local") == "local":
        return dict(spec_dict)
    return {**spec_dict, EXECUTOR_FIELD: executor}


def executor_settings(d: dict | str | None) -> dict:
    """The executor a stored spec asks for: {"kind": "local"} unless with_executor recorded another."""
    if isinstance(d, str):
        try:
            d = json.loads(d)
        except json.JSONDecodeError:
            return {"kind": "local"}
    value = d.get(EXECUTOR_FIELD) if isinstance(d, dict) else None
    return dict(value) if isinstance(value, dict) and value.get("kind") else {"kind": "local"}


def spec_from_dict(d: dict | str) -> Spec:
    """Rebuild a spec from its to_dict() (or that dict as JSON text, as the jobs table stores it); the
    executor entry with_executor adds is not part of the spec (executor_settings reads it)."""
    if isinstance(d, str):
        try:
            d = json.loads(d)
        except json.JSONDecodeError:
            raise ValueError("the job's spec is not valid JSON (damaged or written by hand); it cannot run — "
                             "start the job again from its command or page") from None
    if isinstance(d, dict) and EXECUTOR_FIELD in d:
        d = {k: v for k, v in d.items() if k != EXECUTOR_FIELD}
    if not isinstance(d, dict) or d.get("kind") not in SPECS:
        kind = d.get("kind") if isinstance(d, dict) else None
        raise ValueError(f"unknown job kind {kind!r}; expected one of {', '.join(SPECS)}")
    try:
        return SPECS[d["kind"]].from_dict(d)
    except TypeError as e:  # missing required fields
        raise ValueError(f"bad {d['kind']} spec: {e}") from None
