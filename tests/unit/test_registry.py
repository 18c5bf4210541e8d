"""The merge-method registry is the one declaration: spec fields, store vocabulary, keys and CLI follow it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from backend.jobs.spec import MergeSpec, tree_key
from backend.merge.registry import (
    MERGE_METHODS,
    OPTIONS,
    STUDY_METHODS,
    get_method,
    method_label,
    method_short,
)


def test_every_option_is_a_merge_spec_field_with_the_same_default():
    fields = {f.name: f.default for f in dataclasses.fields(MergeSpec)}
    for name, option in OPTIONS.items():
        assert name in fields, f"MergeSpec needs a field {name!r} for the merge option"
        assert fields[name] == option.default
        assert option.check(option.default, 4) == option.default
    for method in MERGE_METHODS.values():
        assert set(method.options) <= set(OPTIONS), method.name
        assert method.version >= 1 and method.label and method.short
        assert callable(method.function())


def test_store_vocabulary_matches_the_registry():
    from store.models import MODEL_KINDS
    from store.trees import TREE_METHODS

    assert set(TREE_METHODS) == set(MERGE_METHODS), "add the method's name to store.trees.TREE_METHODS"
    assert set(MODEL_KINDS) == {"trained", *MERGE_METHODS}


def test_tree_keys_hold_only_the_options_a_method_takes():
    base = MergeSpec(model_ids=(1, 2, 3, 4), methods=tuple(MERGE_METHODS))
    keys = {m: tree_key(base, m) for m in MERGE_METHODS}
    assert len(set(keys.values())) == len(keys)
    changes = {"lam": 0.25, "seed": 3, "pairing": "random"}
    for name, value in changes.items():
        other = dataclasses.replace(base, **{name: value})
        for method, key in keys.items():
            moved = tree_key(other, method) != key
            assert moved == (name in get_method(method).options), (method, name)
    # tuples and lists name the same explicit pairing
    listed = dataclasses.replace(base, pairing=[[[0, 1], [2, 3]], [[0, 1]]])
    assert tree_key(listed, "hierarchical") == tree_key(
        MergeSpec(model_ids=(1, 2, 3, 4), pairing=(((0, 1), (2, 3)), ((0, 1),))), "hierarchical")


def test_keys_of_version_one_are_the_keys_stored_before_versions():
    from backend.jobs.spec import canonical_key

    spec = MergeSpec(model_ids=(5, 6), lam=0.3, seed=2)
    assert tree_key(spec, "hierarchical") == canonical_key(
        {"method": "hierarchical", "leaves": [5, 6], "lam": 0.3, "pairing": "as_listed", "seed": 2})
    assert tree_key(spec, "merge_many") == canonical_key({"method": "merge_many", "leaves": [5, 6], "seed": 2})
    assert tree_key(spec, "average") == canonical_key({"method": "average", "leaves": [5, 6]})


def test_labels_and_study():
    assert method_label("hierarchical") == "Hierarchical Re-Basin" and method_short("merge_many") == "MergeMany"
    assert method_label("not-registered") == "not-registered"
    assert STUDY_METHODS == ("hierarchical", "merge_many", "average")
    from backend.experiment import METHODS

    assert METHODS == STUDY_METHODS


def test_bad_options_are_one_sentence(make_tiny_params):
    leaves = [make_tiny_params(s) for s in range(2)]
    with pytest.raises(ValueError, match="unknown merge option 'gamma'"):
        get_method("average")(leaves, gamma=1)
    with pytest.raises(ValueError, match=r"lam must be a number in \[0, 1\]"):
        get_method("average")(leaves, lam=2.0)
    with pytest.raises(ValueError, match="pairing level 1"):
        MergeSpec(model_ids=(1, 2), pairing=[[[0, 0]]]).validate()


def test_registry_and_specs_import_without_torch():
    code = ("import sys, backend.merge.registry, backend.jobs.spec; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_options_come_from_the_registry():
    import argparse

    from backend.cli.merge import add_merge_options

    parser = argparse.ArgumentParser()
    add_merge_options(parser)
    args = parser.parse_args([])
    assert {name: getattr(args, name) for name in OPTIONS} == {n: o.default for n, o in OPTIONS.items()}
    args = parser.parse_args(["--lam", "0.25", "--pairing", "random", "--seed", "4"])
    assert (args.lam, args.pairing, args.seed) == (0.25, "random", 4)
