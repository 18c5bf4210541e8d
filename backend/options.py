"""Config fields declared once: each config dataclass declares a field with `option(default, help, ...)`, and
validation, to_dict/from_dict, the key, the CLI options (argparse) and the Streamlit widgets
(app/ui/widgets.py: field_input / config_inputs) are derived from that one declaration.

Torch-free and Streamlit-free (the CLI's `--help` imports it). A config class subclasses `Declared`, sets
`config_name` (used in "unknown <config_name> option(s)") and declares fields as

    epochs: int = option(10, "training epochs", label="Epochs", low=1)

The field's kind comes from its annotation: bool, int, float, str, tuple[int, ...], tuple[float, ...],
tuple[str, ...]; `X | None` with `none="what None means"` allows None. Bounds: low/high (inclusive),
above/below (exclusive); `choices` for str (or each item of tuple[str, ...]). A class adds checks that
involve several fields by overriding `check()` (called after every field passed its own check).

Any other annotation (a dict, a tuple of pairs or of dicts) is a structured field, kind "json": a JSON value
(typed as JSON on the CLI and in a text box) whose shape no flat kind can say, so its declaration says it with
`shape="what a valid value is"` and `check=` (value -> bool; may raise its own one-sentence ValueError for a
deeper rule). The experiment plan's trees, eval overrides, variants and connectivity settings are such fields.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields  # noqa: F401 - MISSING: for declarations
from typing import Any, ClassVar

KINDS = ("bool", "int", "float", "str", "ints", "floats", "strs", "json")
METAVARS = {"int": "N", "float": "X", "str": "TEXT", "ints": "N,N,...", "floats": "X,X,...", "strs": "A,B,...",
            "json": "JSON"}


@dataclass(frozen=True)
class Opt:
    """How one config field is checked, shown and typed in. Only `help` is required."""

    help: str  # one line: CLI help and widget tooltip
    label: str = ""  # widget label (default: the field name, capitalised, underscores as spaces)
    what: str = ""  # the noun in error messages (default: the field name)
    choices: tuple = ()  # allowed values of a str field, or of each item of a tuple[str, ...] field
    low: float | None = None  # inclusive bounds of a number (each item of a tuple)
    high: float | None = None
    above: float | None = None  # exclusive bounds
    below: float | None = None
    none: str = ""  # None is allowed and means this ("the whole test split"); number boxes show it as 0
    flag: str = ""  # the CLI flag (default --name-with-dashes)
    parse: Callable[[str], Any] | None = None  # text -> value for the CLI and the widget's text box
    show: Callable[[Any], str] | None = None  # how a choice is labelled in a widget
    step: float | None = None  # widget step
    format: str | None = None  # widget number format, e.g. "%.6f"
    distinct: bool = False  # a tuple's items must differ
    nonempty: bool = False  # a tuple needs at least one item
    keyed_at_default: bool = True  # False: left out of to_dict (so of the key) while at its default
    internal: bool = False  # not a user option: no CLI flag, no widget (e.g. a version)
    suggest: Any = None  # a required field (no default): the value the CLI and the widgets start from
    shape: str = ""  # a structured ("json") field: what a valid value is, in words ("a list of ... pairs")
    check: Callable[[Any], bool] | None = None  # a structured field: is the value of that shape? (required there)


def option(default: Any, help: str, **kw) -> Any:
    """A dataclass field with its declaration; a tuple default is fine (tuples are immutable), a dict or list
    default is copied for every instance. `default=MISSING` declares a required field (give `suggest=` for the
    CLI and the widgets)."""
    metadata = {"opt": Opt(help=help, **kw)}
    if isinstance(default, dict | list):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def internal(default: Any, help: str = "") -> Any:
    return field(default=default, metadata={"opt": Opt(help=help or "internal", internal=True)})


@dataclass(frozen=True)
class Declared:
    """One declared field: its name, default, kind, whether None is allowed, and its Opt."""

    name: str
    default: Any
    kind: str
    nullable: bool
    opt: Opt

    @property
    def flag(self) -> str:
        return self.opt.flag or f"--{self.name.replace('_', '-')}"

    @property
    def what(self) -> str:
        return self.opt.what or self.name

    @property
    def label(self) -> str:
        return self.opt.label or self.name.replace("_", " ").capitalize()


def _kind(hint: Any) -> tuple[str, bool]:
    nullable = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(hint))
        hint = args[0]
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return {int: "ints", float: "floats", str: "strs"}.get(item, "json"), nullable
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(hint, "json"), nullable


def declared(cls) -> list[Declared]:
    """The declared fields of a config class (or instance), in declaration order."""
    cls = cls if isinstance(cls, type) else type(cls)
    cached = cls.__dict__.get("_declared")
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        opt = f.metadata.get("opt")
        if opt is None:
            continue
        kind, nullable = _kind(hints[f.name])
        if kind == "json" and (opt.check is None or not opt.shape):
            raise TypeError(f"{cls.__name__}.{f.name}: a structured field declares shape= and check=")
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:  # required: forms and the CLI start from the suggestion
            default = opt.suggest
        out.append(Declared(f.name, default, kind, nullable or bool(opt.none), opt))
    cls._declared = out
    return out


def declared_field(cls, name: str) -> Declared:
    return {d.name: d for d in declared(cls)}[name]


# ---- validation: one readable sentence per bad field, from the declaration -------------------------------

def _range_text(opt: Opt) -> str:
    lo = f"[{opt.low:g}" if opt.low is not None else (f"({opt.above:g}" if opt.above is not None else None)
    hi = f"{opt.high:g}]" if opt.high is not None else (f"{opt.below:g})" if opt.below is not None else None)
    if lo and hi:
        return f" in {lo}, {hi}"
    if lo:
        return f" >= {opt.low:g}" if opt.low is not None else f" > {opt.above:g}"
    if hi:
        return f" <= {opt.high:g}" if opt.high is not None else f" < {opt.below:g}"
    return ""


def _in_range(value: float, opt: Opt) -> bool:
    return ((opt.low is None or value >= opt.low) and (opt.high is None or value <= opt.high)
            and (opt.above is None or value > opt.above) and (opt.below is None or value < opt.below))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _integers(opt: Opt, plural: bool = False) -> str:
    if opt.low == 1 and opt.high is None:
        return "positive integers" if plural else "a positive integer"
    if opt.low == 0 and opt.high is None:
        return "non-negative integers" if plural else "a non-negative integer"
    return ("integers" if plural else "an integer") + _range_text(opt)


def describe(d: Declared) -> str:
    """What a valid value is, in words ("a positive integer", "one of adam, sgd", ...)."""
    opt = d.opt
    text = {"bool": "true or false", "int": _integers(opt), "float": f"a number{_range_text(opt)}",
            "str": "a text", "ints": f"a list of {_integers(opt, plural=True)}",
            "floats": f"a list of numbers{_range_text(opt)}", "strs": "a list of names", "json": opt.shape}[d.kind]
    if opt.choices:
        text = f"one of {', '.join(map(str, opt.choices))}" if d.kind == "str" else \
            f"a list of names from {', '.join(map(str, opt.choices))}"
    if d.nullable:
        text += f", or None ({opt.none})" if opt.none else ", or None"
    return text


def check_field(d: Declared, value: Any) -> None:
    """ValueError '<name> must be <describe>, got <value>' (choices: 'unknown <name> ...')."""
    opt, w = d.opt, d.what
    if value is None:
        if d.nullable:
            return
        raise ValueError(f"{w} must be {describe(d)}, got None")
    if d.kind == "json":  # checked in the shape normalise() gives it (tuples, dicts)
        if not opt.check(_frozen(value)):
            raise ValueError(f"{w} must be {describe(d)}, got {json.dumps(jsonable(value), default=str)}")
        return
    if d.kind == "str" and opt.choices and value not in opt.choices:
        raise ValueError(f"unknown {w} {value!r}: {w} must be one of {', '.join(map(str, opt.choices))}")
    if d.kind in ("ints", "floats", "strs"):
        items = list(value) if isinstance(value, tuple | list) else None
        item_ok = {"ints": _is_int, "floats": _is_number, "strs": lambda v: isinstance(v, str)}[d.kind]
        ok = items is not None and all(item_ok(v) for v in items)
        if ok and d.kind != "strs":
            ok = all(_in_range(v, opt) for v in items)
        if ok and opt.choices:
            unknown = [v for v in items if v not in opt.choices]
            if unknown:
                raise ValueError(f"unknown {w} {unknown}; choose from {', '.join(map(str, opt.choices))}")
        if ok and opt.nonempty and not items:
            raise ValueError(f"{w} needs at least one value")
        if ok and opt.distinct and len(set(items)) != len(items):
            raise ValueError(f"{w} lists a value twice: {items}")
        if not ok:
            raise ValueError(f"{w} must be {describe(d)}, got {items if items is not None else value!r}")
        return
    ok = {"bool": lambda v: isinstance(v, bool), "int": lambda v: _is_int(v) and _in_range(v, opt),
          "float": lambda v: _is_number(v) and _in_range(v, opt), "str": lambda v: isinstance(v, str)}[d.kind](value)
    if not ok:
        raise ValueError(f"{w} must be {describe(d)}, got {value!r}")


def normalise(obj) -> None:
    """In __post_init__: JSON lists -> tuples, list items of float lists -> float, a single name for a
    tuple[str, ...] -> a one-item tuple (so equal configs compare and hash equally); a structured field's lists
    -> tuples at every depth, its objects -> plain dicts (their values as given). Scalars stay as given: an int
    lr keeps the key it always had."""
    for d in declared(obj):
        value = getattr(obj, d.name)
        if d.kind in ("ints", "floats", "strs"):
            if isinstance(value, str) and d.kind == "strs":
                value = (value,)
            if isinstance(value, list | tuple):
                value = tuple(float(v) if d.kind == "floats" and _is_number(v) else v for v in value)
        if d.kind == "json":
            value = _frozen(value)
        object.__setattr__(obj, d.name, value)


def _frozen(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return dict(value) if isinstance(value, Mapping) else value


class Config:
    """Base of the declared configs: frozen dataclasses whose fields are `option(...)`s."""

    config_name: ClassVar[str] = "config"

    def __post_init__(self):
        normalise(self)
        self.validate()

    def validate(self) -> None:
        """Every field against its declaration, then the class's own cross-field check()."""
        for d in declared(self):
            check_field(d, getattr(self, d.name))
        self.check()

    def check(self) -> None:
        """Checks across fields; override (raise ValueError with one sentence)."""

    def to_dict(self) -> dict:
        d = jsonable(asdict(self))
        for decl in declared(self):
            if not decl.opt.keyed_at_default and getattr(self, decl.name) == decl.default:
                del d[decl.name]
        return d

    @classmethod
    def from_dict(cls, d: Mapping):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown {cls.config_name} option(s): {', '.join(unknown)}")
        return cls(**dict(d))

    def key(self) -> str:
        return canonical_key(self.to_dict())


def jsonable(value: Any) -> Any:
    """Tuples -> lists, at every depth (what JSON gives back)."""
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def canonical_key(obj: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no spaces), first 16 hex chars."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- text (CLI arguments and widget text boxes) ------------------------------------------------------------

def show_value(d: Declared, value: Any) -> str:
    """A value of the field as text (CLI help, widget text boxes); parse_text reads it back."""
    if value is None:
        return d.opt.none or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if d.kind == "json":
        return json.dumps(jsonable(value), separators=(",", ":"))
    if isinstance(value, tuple | list):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def show_default(d: Declared) -> str:
    return show_value(d, d.default)


def parse_text(d: Declared, text: str, what: str | None = None) -> Any:
    """A value from typed text: 'a, b' lists (commas, semicolons or spaces), numbers; ValueError naming `what`
    (the widget label or the CLI flag) when it is not even the right shape. Ranges are the config's check."""
    what = what or d.label
    if d.opt.parse is not None:
        return d.opt.parse(text)
    if d.kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"{what} must be JSON ({describe(d)}), got {text!r}") from None
    if d.kind in ("ints", "floats", "strs"):
        parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
        if d.kind == "strs":
            return tuple(parts)
        try:
            return tuple((int if d.kind == "ints" else float)(p) for p in parts)
        except ValueError:
            noun = "whole numbers" if d.kind == "ints" else "numbers"
            raise ValueError(f"{what} must be {noun} separated by commas, got {text!r}") from None
    if d.kind in ("int", "float"):
        try:
            return (int if d.kind == "int" else float)(text)
        except ValueError:
            raise ValueError(f"{what} must be {'an integer' if d.kind == 'int' else 'a number'}, got {text!r}") \
                from None
    return text


# ---- CLI -------------------------------------------------------------------------------------------------

class _ExplicitNone:
    """What a CLI option of a nullable field parses `none` to: unlike an option left out (argparse's None,
    'keep the default'), it sets the field to None (e.g. `--train-subset none` = the whole split)."""

    def __repr__(self) -> str:
        return "none"


EXPLICIT_NONE = _ExplicitNone()
NONE_WORDS = ("none", "null")


def _is_none_word(d: Declared, text: Any) -> bool:
    return d.nullable and isinstance(text, str) and text.strip().lower() in NONE_WORDS


def add_arguments(parser, cls, *, skip: tuple[str, ...] = (), title: str | None = None,
                  defaults: str | None = None) -> None:
    """One argparse option per declared field (default None = keep the config's default; the config
    checks the value, so a bad one is the declaration's one-line message). `defaults` replaces each field's
    declared default in the help where the values start elsewhere (the experiment's "from the preset")."""
    target = parser.add_argument_group(title) if title else parser
    for d in declared(cls):
        if d.opt.internal or d.name in skip:
            continue
        shown = defaults or show_default(d)
        help_text = f"{d.opt.help} (default {shown})" if shown else d.opt.help
        if d.nullable and d.kind != "bool" and (defaults or d.default is not None):
            help_text += f"; none = {d.opt.none or 'unset'}"
        help_text = help_text.replace("%", "%%")
        if d.kind == "bool":
            target.add_argument(d.flag, dest=d.name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        elif d.kind == "str" and d.opt.choices:
            target.add_argument(d.flag, dest=d.name, choices=d.opt.choices, default=None, help=help_text)
        else:
            # a field with its own parser is parsed by values_from_args: its error is the plain one-line ValueError
            target.add_argument(d.flag, dest=d.name, type=_cli_type(d) if d.opt.parse is None else str,
                                default=None, help=help_text, metavar=METAVARS[d.kind] if d.opt.parse is None else "TEXT")


def _cli_type(d: Declared) -> Callable[[str], Any]:
    plural = {"ints": _integers(d.opt, plural=True), "floats": "numbers", "strs": "names"}.get(d.kind)
    shape = f"comma-separated {plural}" if plural else describe(d)
    if d.kind == "json":
        shape = f"JSON: {shape}"

    def convert(text: str):
        if _is_none_word(d, text):
            return EXPLICIT_NONE
        try:
            return parse_text(d, text, d.flag)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {shape}, got {text!r}") from None

    convert.__name__ = d.kind
    return convert


def values_from_args(args: argparse.Namespace, cls, *, skip: tuple[str, ...] = ()) -> dict:
    """The declared fields the command line set (unset ones keep the config's defaults); a field with its own
    parser (`parse=`) is parsed here, so a bad value is its one-line ValueError."""
    out = {}
    for d in declared(cls):
        value = getattr(args, d.name, None)
        if d.opt.internal or d.name in skip or value is None:
            continue
        if value is EXPLICIT_NONE or _is_none_word(d, value):
            out[d.name] = None
            continue
        out[d.name] = d.opt.parse(value) if d.opt.parse is not None and isinstance(value, str) else value
    return out


def cli_flags(cls) -> dict[str, str]:
    """{field name: CLI flag} of every user option."""
    return {d.name: d.flag for d in declared(cls) if not d.opt.internal}


def user_fields(cls) -> list[str]:
    """The names of the fields a user sets (every declared field but the internal ones), in order."""
    return [d.name for d in declared(cls) if not d.opt.internal]
