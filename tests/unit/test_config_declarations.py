"""Each config declares its fields once (backend/options.py); validation, the key, the CLI options and the
Streamlit widgets are derived from that declaration. These tests hold every face to it."""

from __future__ import annotations

import argparse

import pytest

from backend.connectivity_config import ConnectivityConfig
from backend.evaluate.config import EvalConfig
from backend.experiment import ExperimentPlan
from backend.jobs.spec import TrainSpec
from backend.options import check_field, cli_flags, declared, describe, user_fields
from backend.train_config import TrainConfig

CONFIGS = [TrainConfig, EvalConfig, ConnectivityConfig]
# the subcommand whose options carry each config's fields
COMMANDS = {TrainConfig: "train", TrainSpec: "train", EvalConfig: "evaluate", ConnectivityConfig: "interpolate",
            ExperimentPlan: "experiment"}


def _subparser(command: str) -> argparse.ArgumentParser:
    from backend.cli import build_parser

    parser, _ = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


@pytest.mark.parametrize("cls", [*CONFIGS, TrainSpec, ExperimentPlan], ids=lambda c: c.__name__)
def test_every_field_has_a_cli_option(cls):
    parser = _subparser(COMMANDS[cls])
    options = {o: a for a in parser._actions for o in a.option_strings}
    for name, flag in cli_flags(cls).items():
        assert flag in options, f"{cls.__name__}.{name} has no {flag} option in `{COMMANDS[cls]}`"
        assert options[flag].dest == name and options[flag].default is None  # unset = the declared default
    assert "evaluation" in {g.title for g in _subparser("merge")._action_groups}  # merge --evaluate takes them too


@pytest.mark.parametrize("cls", [*CONFIGS, ExperimentPlan], ids=lambda c: c.__name__)
def test_every_config_field_is_declared(cls):
    from dataclasses import fields

    assert [f.name for f in fields(cls)] == [d.name for d in declared(cls)], "a field without option(...)"
    for d in declared(cls):
        check_field(d, d.default)  # the declared default passes the declared check
        assert d.opt.help and d.label


def _bad_value(d):
    if d.kind == "bool":
        return "yes"
    if d.kind == "int":
        return int(d.opt.low) - 1 if d.opt.low is not None else "many"
    if d.kind == "float":
        return float("nan")
    if d.kind == "str":
        return "no-such-choice" if d.opt.choices else 7
    return ["x"] if d.kind in ("ints", "floats") else [7]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_validation_messages_come_from_the_declaration(cls):
    for d in declared(cls):
        bad = _bad_value(d)
        with pytest.raises(ValueError) as direct:
            check_field(d, bad)
        with pytest.raises(ValueError) as built:
            cls(**{d.name: bad})
        assert str(built.value) == str(direct.value), d.name  # the constructor says what the declaration says
        assert d.what in str(built.value) and "\n" not in str(built.value)
        if not (d.kind == "str" and d.opt.choices) and d.kind != "strs":
            assert describe(d) in str(built.value)


def test_a_structured_field_is_json_checked_by_its_declaration():
    """A field no flat kind fits (ExperimentPlan's trees, eval, variants, connectivity) is kind "json": JSON lists
    become tuples, its shape= is the sentence, its check= the test; the CLI and text boxes read JSON."""
    from dataclasses import dataclass

    from backend.options import Config, declared_field, option, parse_text, show_default

    trees = declared_field(ExperimentPlan, "trees")
    assert trees.kind == "json" and declared_field(ExperimentPlan, "connectivity").nullable
    assert ExperimentPlan(preset="x", trees=[[1, 4], [2, 8]]).trees == ((1, 4), (2, 8))
    with pytest.raises(ValueError) as err:
        ExperimentPlan(preset="x", trees=[[1, 1]])
    assert str(err.value) == f"trees must be {describe(trees)}, got [[1, 1]]"
    assert parse_text(trees, "[[1,4]]") == [[1, 4]] and show_default(trees) == "[[2,4],[2,8]]"
    with pytest.raises(ValueError, match="must be JSON"):
        parse_text(trees, "[[1,")
    check_field(trees, [[3, 4]])  # a JSON list passes as its tuple would
    from app.ui.widgets import field_value

    assert field_value(ExperimentPlan, "trees", "[[1, 4]]") == [[1, 4]]  # its text box
    with pytest.raises(TypeError, match="shape= and check="):
        @dataclass(frozen=True)
        class Loose(Config):
            pairs: tuple[tuple[int, int], ...] = option((), "pairs")

        declared(Loose)


def test_cli_usage_errors_are_the_declarations_words(capsys):
    from backend.cli import main

    assert main(["train", "--epochs", "0", "--dataset", "mnist", "--background"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: epochs must be a positive integer, got 0"
    assert main(["interpolate", "--models", "1,2", "--align", "weight,magic"]) == 2
    assert "unknown alignments ['magic']" in capsys.readouterr().err


def test_cli_values_build_the_same_config_and_key():
    from backend.cli.common import eval_config_from_args
    from backend.cli.interpolate import config_from_args

    parser = _subparser("evaluate")
    args = parser.parse_args(["--models", "1", "--fgsm-eps", "0,0.01", "--subset", "10", "--pgd-steps", "40"])
    assert EvalConfig.from_dict(eval_config_from_args(args)).key() == \
        EvalConfig(fgsm_eps=(0.0, 0.01), subset=10).key()  # pgd_steps at its default stays out of the key
    args = _subparser("interpolate").parse_args(["--models", "1,2", "--lam-grid", "3", "--align", "weight",
                                                 "--repair", "--subset", "5"])
    assert config_from_args(args) == ConnectivityConfig(lam_grid=(0, 0.5, 1), aligns=("weight",), repair=True,
                                                        test_subset=5).to_dict()


def test_none_on_the_command_line_sets_a_nullable_field_to_none():
    """Leaving an option out keeps the default; `none` sets a nullable field to None (the experiment's preset
    sets train_subset, `--train-subset none` trains on the whole split)."""
    from backend.cli.common import UsageError
    from backend.options import values_from_args

    args = _subparser("experiment").parse_args(["--train-subset", "none", "--connectivity", "null", "--epochs", "2"])
    assert values_from_args(args, ExperimentPlan) == {"train_subset": None, "connectivity": None, "epochs": 2}
    args = _subparser("interpolate").parse_args(["--models", "1,2", "--subset", "None"])
    assert values_from_args(args, ConnectivityConfig)["test_subset"] is None
    args = _subparser("train").parse_args(["--train-subset", "500"])
    assert values_from_args(args, TrainConfig)["train_subset"] == 500
    with pytest.raises(UsageError):  # a field that cannot be None does not take it
        _subparser("train").parse_args(["--epochs", "none"])
    help_text = _subparser("experiment").format_help()
    assert "none = the whole train split" in " ".join(help_text.split())


@pytest.mark.parametrize("cls", [*CONFIGS, TrainSpec], ids=lambda c: c.__name__)
def test_every_field_has_a_widget(cls):
    """config_inputs draws one widget per user field, keyed by its name, and returns the declared defaults."""
    from streamlit.testing.v1 import AppTest

    def page(name):
        import streamlit as st

        from app.ui.widgets import config_inputs
        from backend.connectivity_config import ConnectivityConfig
        from backend.evaluate.config import EvalConfig
        from backend.jobs.spec import TrainSpec
        from backend.train_config import TrainConfig

        cls = {c.__name__: c for c in (TrainConfig, EvalConfig, ConnectivityConfig, TrainSpec)}[name]
        defaults = {"name": "z", "n_models": 2} if cls is TrainSpec else {}
        st.session_state["values"] = config_inputs(cls, "t", defaults=defaults, more=("batch_size",))

    at = AppTest.from_function(page, args=(cls.__name__,), default_timeout=60).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    for name in user_fields(cls):
        assert f"t-{name}" in at.session_state, f"{cls.__name__}.{name} has no widget"
    values = at.session_state["values"]
    if cls is not TrainSpec:
        assert cls(**values) == cls()  # the widgets start at the declared defaults


def test_a_page_default_shows_in_list_and_json_boxes():
    """A page's own starting value (not the declared default) is what a text box for a list or JSON field shows,
    and it reads back as that value."""
    from streamlit.testing.v1 import AppTest

    def page():
        import streamlit as st

        from app.ui.widgets import field_input, field_value
        from backend.experiment import ExperimentPlan
        from backend.train_config import TrainConfig

        raw = field_input(TrainConfig, "widths", key="p", default=(64, 32))
        trees = field_input(ExperimentPlan, "trees", key="p", default=((3, 4),))
        st.session_state["read"] = (field_value(TrainConfig, "widths", raw),
                                    field_value(ExperimentPlan, "trees", trees))

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception
    assert [t.value for t in at.text_input] == ["64, 32", "[[3,4]]"]
    assert at.session_state["read"] == ((64, 32), [[3, 4]])  # JSON as typed; the config makes tuples of it


def test_pages_draw_every_field():
    """The Zoo page's form shows every TrainConfig and TrainSpec option; the Merge builder's evaluation every
    EvalConfig option (config_inputs); the Connectivity page's form every ConnectivityConfig option."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "app" / "views"
    zoo = (root / "zoo.py").read_text()
    for name in [*user_fields(TrainConfig), *user_fields(TrainSpec)]:
        assert f'"{name}"' in zoo, f"the Zoo page has no widget for {name}"
    assert "user_fields(ConnectivityConfig)" in (root / "connectivity.py").read_text()
    assert "eval_config_inputs(" in (root / "merge_builder.py").read_text()
