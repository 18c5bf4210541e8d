"""Merge methods on tiny MLPs: pair merge, hierarchical tree, MergeMany, average, registry."""

from __future__ import annotations

import pytest
import torch

from backend.merge import (
    MERGE_METHODS,
    MergeError,
    check_compatible,
    get_method,
    hierarchical_merge,
    interpolate,
    merge_many,
    merge_pair,
    naive_average,
    plan_tree,
)
from backend.merge.merge_many import alignment_objective
from backend.models import MLPConfig, mlp_from_state_dict
from backend.permutation import apply_permutation, random_permutation, spec_for_params

X = torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))


def _logits(params):
    with torch.no_grad():
        return mlp_from_state_dict(params)(X)


def _close(p, q, atol=1e-5):
    assert set(p) == set(q)
    for k in p:
        torch.testing.assert_close(p[k], q[k], atol=atol, rtol=1e-5)


def _permuted_copies(params, n):
    spec = spec_for_params(params)
    return [params] + [apply_permutation(spec, random_permutation(spec, params, seed), params) for seed in range(1, n)]


# --- pair merge -----------------------------------------------------------------------------------


def test_pair_merge_of_a_permuted_copy_gives_the_model_back(make_tiny_params):
    a = make_tiny_params(0)
    (_, b) = _permuted_copies(a, 2)
    merged = merge_pair(a, b, lam=0.5)
    _close(merged.params, a)
    assert merged.match.sweeps >= 1


def test_pair_merge_endpoints(make_tiny_params):
    a, b = make_tiny_params(0), make_tiny_params(1)
    at_a = merge_pair(a, b, lam=0.0).params
    _close(at_a, a, atol=0)
    at_b = merge_pair(a, b, lam=1.0)
    spec = spec_for_params(a)
    _close(at_b.params, apply_permutation(spec, at_b.match.perm, b), atol=0)
    torch.testing.assert_close(_logits(at_b.params), _logits(b))  # π(B) is B's function
    halfway = merge_pair(a, b, lam=0.5).params
    _close(halfway, interpolate(a, apply_permutation(spec, at_b.match.perm, b), 0.5))
    assert torch.equal(halfway["mean"], a["mean"]) and torch.equal(halfway["std"], a["std"])


# --- hierarchical tree ----------------------------------------------------------------------------


def test_tree_over_8_models(make_tiny_params):
    leaves = [make_tiny_params(s) for s in range(8)]
    events = []
    nodes = hierarchical_merge(leaves, progress=events.append)
    assert [sum(n.level == k for n in nodes) for k in range(4)] == [8, 4, 2, 1]
    assert [n.index for n in nodes] == list(range(15))
    assert [n.parents for n in nodes[8:]] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13)]
    assert all(n.parents == () and n.match is None for n in nodes[:8])
    assert all(n.match is not None and n.seconds > 0 for n in nodes[8:])
    _close(nodes[12].params, merge_pair(nodes[8].params, nodes[9].params).params)
    assert events[-1].done == events[-1].total == 7
    assert plan_tree(8) == [[(0, 1), (2, 3), (4, 5), (6, 7)], [(0, 1), (2, 3)], [(0, 1)]]


def test_odd_leaf_count_carries_the_last_node_up(make_tiny_params):
    leaves = [make_tiny_params(s) for s in range(5)]
    assert plan_tree(5) == [[(0, 1), (2, 3), (4,)], [(0, 1), (2,)], [(0, 1)]]
    nodes = hierarchical_merge(leaves)
    assert [(n.level, n.parents) for n in nodes[5:]] == [
        (1, (0, 1)), (1, (2, 3)), (1, (4,)), (2, (5, 6)), (2, (7,)), (3, (8, 9)),
    ]
    carried = nodes[7]
    assert carried.match is None and carried.seconds == 0.0
    _close(carried.params, leaves[4], atol=0)
    _close(nodes[9].params, leaves[4], atol=0)


def test_tree_of_permuted_copies_is_the_original(make_tiny_params):
    original = make_tiny_params(0)
    leaves = _permuted_copies(original, 8)
    for pairing in ("as_listed", "random"):
        root = hierarchical_merge(leaves, pairing=pairing, seed=3)[-1]
        torch.testing.assert_close(_logits(root.params), _logits(original), atol=1e-5, rtol=1e-5)
    _close(hierarchical_merge(leaves)[-1].params, original)  # root lives in leaf 0's basis


def test_random_and_explicit_pairings(make_tiny_params):
    plan = plan_tree(8, "random", seed=1)
    assert plan == plan_tree(8, "random", seed=1)
    assert sorted(i for g in plan[0] for i in g) == list(range(8))
    assert any(plan_tree(8, "random", seed=s)[0] != plan_tree(8)[0] for s in range(5))
    assert plan[1:] == plan_tree(8)[1:]

    custom = [[(3, 2), (1, 0)], [(1, 0)]]
    assert plan_tree(4, custom) == custom
    leaves = [make_tiny_params(s) for s in range(4)]
    nodes = hierarchical_merge(leaves, pairing=custom)
    assert [n.parents for n in nodes[4:]] == [(3, 2), (1, 0), (5, 4)]
    _close(nodes[4].params, merge_pair(leaves[3], leaves[2]).params)

    bad = {
        "exactly once": [[(0, 1), (1, 2)], [(0, 1)]],
        "exactly once ": [[(0, 1), (2, 4)], [(0, 1)]],
        "must be a pair": [[(0, 1, 2), (3,)], [(0, 1)]],
        "single root": [[(0, 1), (2, 3)]],
        "merges nothing": [[(0, 1), (2, 3)], [(0,), (1,)], [(0, 1)]],
        "integer": [[(0, 1.0), (2, 3)], [(0, 1)]],
        "unknown pairing": "zigzag",
        "non-empty list of levels": [],
    }
    for message, pairing in bad.items():
        with pytest.raises(MergeError, match=message.strip()):
            plan_tree(4, pairing)
    with pytest.raises(MergeError, match="at least 2 leaf"):
        plan_tree(1)


# --- MergeMany, average -----------------------------------------------------------------


def test_merge_many_of_permuted_copies_is_the_model(make_tiny_params):
    original = make_tiny_params(0)
    result = merge_many(_permuted_copies(original, 4), seed=0)
    torch.testing.assert_close(_logits(result.params), _logits(original), atol=1e-5, rtol=1e-5)
    for aligned in result.aligned:
        _close(aligned, result.params)  # all copies landed in one basis
    assert 1 <= result.rounds <= 100 and len(result.objective_trace) == result.rounds


def test_merge_many_improves_alignment_and_is_seeded(make_tiny_params):
    models = [make_tiny_params(s) for s in range(4)]
    first, again = merge_many(models, seed=5), merge_many(models, seed=5)
    _close(first.params, again.params, atol=0)
    assert first.objective_trace == again.objective_trace
    for model, aligned in zip(models, first.aligned, strict=True):
        torch.testing.assert_close(_logits(aligned), _logits(model), atol=1e-5, rtol=1e-5)
    trace = first.objective_trace
    assert all(y >= x for x, y in zip(trace, trace[1:], strict=False))
    assert trace[-1] > alignment_objective(spec_for_params(models[0]), models)
    aligned_spread = sum((a["layers.0.weight"] - first.params["layers.0.weight"]).norm() for a in first.aligned)
    naive_spread = sum((m["layers.0.weight"] - naive_average(models)["layers.0.weight"]).norm() for m in models)
    assert aligned_spread < naive_spread


def test_naive_average(make_tiny_params):
    models = [make_tiny_params(s) for s in range(3)]
    avg = naive_average(models)
    for key in ("layers.0.weight", "layers.2.bias"):
        torch.testing.assert_close(avg[key], (models[0][key] + models[1][key] + models[2][key]) / 3)
    assert torch.equal(avg["mean"], models[0]["mean"])


# --- registry and bad input -----------------------------------------------------------------------


def test_registry_methods_share_one_shape(make_tiny_params):
    leaves = [make_tiny_params(s) for s in range(4)]
    assert set(MERGE_METHODS) == {"hierarchical", "merge_many", "average"}
    for name in MERGE_METHODS:
        nodes = get_method(name)(leaves, lam=0.5, pairing="as_listed", seed=0)
        assert [n.index for n in nodes] == list(range(len(nodes)))
        assert nodes[-1].level == 2 and all(n.level == 0 for n in nodes[:4])  # 4 leaves: root at level 2
    root = get_method("average")(leaves)[-1]
    assert root.parents == (0, 1, 2, 3)
    _close(root.params, naive_average(leaves))
    with pytest.raises(MergeError, match="unknown merge method 'nope'"):
        get_method("nope")


def test_bad_input_is_a_clear_value_error(make_tiny_params, tiny_config):
    a = make_tiny_params(0)
    wide = make_tiny_params(1, MLPConfig(in_shape=(1, 4, 4), widths=(9, 6), num_classes=3, mean=(0.5,), std=(0.25,)))
    nan = {**a, "layers.1.weight": a["layers.1.weight"].clone().fill_(float("nan"))}
    other_data = {**a, "mean": torch.tensor([0.1])}
    cases = [
        (lambda: merge_pair(a, wide), r"model 1: 'layers.0.weight' has shape \(9, 16\)"),
        (lambda: hierarchical_merge([]), "the list is empty"),
        (lambda: naive_average([]), "the list is empty"),
        (lambda: merge_many([a]), "at least 2 models"),
        (lambda: merge_pair(a, a, lam=1.5), r"lam must be a number in \[0, 1\]"),
        (lambda: interpolate(a, a, -0.1), r"lam must be a number in \[0, 1\]"),
        (lambda: hierarchical_merge([a, a], lam=float("nan")), "lam must be"),
        (lambda: hierarchical_merge([a, a, nan]), "model 2: 'layers.1.weight' contains NaN"),
        (lambda: check_compatible([a, other_data]), "normalises its input differently"),
        (lambda: check_compatible([a, {k: v for k, v in a.items() if k != "std"}]), "missing"),
        (lambda: merge_many([a, a], max_rounds=0), "max_rounds"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_parse_pairing_text_reads_levels_and_rejects_nonsense():
    from backend.merge.tree import parse_pairing, plan_tree

    levels = parse_pairing("0-2, 1-3\n0-1")
    assert levels == [[[0, 2], [1, 3]], [[0, 1]]]
    assert parse_pairing("0-2,1-3;0-1") == levels  # the CLI's one-line form
    assert plan_tree(4, levels, 0) == plan_tree(4, parse_pairing("0-2, 1-3; 0-1"), 0)
    for bad, needle in (("0-1-2", "more than two"), ("a-b", "not a pair"), ("  ", "at least one level")):
        with pytest.raises(ValueError, match=needle):
            parse_pairing(bad)
