"""Matcher and REPAIR options of pair, hierarchical and MergeMany merges, on tiny models."""

from __future__ import annotations

import pytest
import torch

from backend.merge.common import MergeError, interpolate
from backend.merge.merge_many import merge_many
from backend.merge.pair import merge_pair
from backend.merge.repair import hidden_stats
from backend.merge.tree import hierarchical_merge
from backend.models import MLPConfig, mlp_from_state_dict
from backend.permutation import apply_permutation, random_permutation, spec_for_params
from backend.stacked import stack_params

WIDE = MLPConfig(in_shape=(1, 4, 4), widths=(16, 12, 10), num_classes=3, mean=(0.5,), std=(0.25,))


def _images(n=400, seed=0):
    return torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed))


def _permuted_copies(a, n):
    spec = spec_for_params(a)
    return [a] + [apply_permutation(spec, random_permutation(spec, a, seed=s), a) for s in range(1, n)]


def _same_function(p, q, x):
    torch.testing.assert_close(mlp_from_state_dict(p)(x), mlp_from_state_dict(q)(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("matcher", ["weight", "activation"])
def test_pair_of_permuted_copies_merges_back_to_the_model(make_tiny_params, matcher):
    a = make_tiny_params(0, WIDE)
    _, b = _permuted_copies(a, 2)
    x = _images()
    for repair in (False, True):
        merged = merge_pair(a, b, lam=0.3, matcher=matcher, repair=repair, images=x)
        for key in a:
            torch.testing.assert_close(merged.params[key], a[key], atol=1e-4, rtol=1e-4)


def test_pair_repair_hits_the_interpolated_statistics(make_tiny_params):
    a, b = make_tiny_params(0, WIDE), make_tiny_params(1, WIDE)
    x = _images()
    plain = merge_pair(a, b, lam=0.25, matcher="activation", images=x)
    fixed = merge_pair(a, b, lam=0.25, matcher="activation", repair=True, images=x)
    aligned_b = apply_permutation(spec_for_params(a), fixed.match.perm, b)
    torch.testing.assert_close(plain.params["layers.0.weight"], interpolate(a, aligned_b, 0.25)["layers.0.weight"])
    ends = hidden_stats(stack_params([a, aligned_b]), x)
    got = hidden_stats(stack_params([fixed.params]), x)
    for (m, s), (em, es) in zip(got, ends, strict=True):
        torch.testing.assert_close(m[0], 0.75 * em[0] + 0.25 * em[1], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(s[0], 0.75 * es[0] + 0.25 * es[1], atol=1e-4, rtol=1e-4)


def test_hierarchical_with_activation_matching_and_repair(make_tiny_params):
    a = make_tiny_params(0, WIDE)
    leaves = _permuted_copies(a, 4)
    x = _images()
    for repair in (False, True):
        nodes = hierarchical_merge(leaves, matcher="activation", repair=repair, images=x)
        assert len(nodes) == 7 and nodes[-1].level == 2
        _same_function(nodes[-1].params, a, x)  # every merge joins two copies of one function
    others = [make_tiny_params(s, WIDE) for s in range(4)]
    plain = hierarchical_merge(others, images=x)
    fixed = hierarchical_merge(others, repair=True, images=x)
    assert not torch.equal(plain[-1].params["layers.0.weight"], fixed[-1].params["layers.0.weight"])
    # the level-1 nodes of both trees used the same permutations (REPAIR changes weights, not matching)
    assert all(torch.equal(plain[4].match.perm[p], fixed[4].match.perm[p]) for p in plain[4].match.perm)


@pytest.mark.parametrize("matcher", ["weight", "activation"])
def test_merge_many_of_permuted_copies_is_the_model(make_tiny_params, matcher):
    a = make_tiny_params(0, WIDE)
    x = _images()
    result = merge_many(_permuted_copies(a, 4), matcher=matcher, repair=True, images=x)
    _same_function(result.params, a, x)
    for aligned in result.aligned[1:]:  # all in one basis
        for key in a:
            torch.testing.assert_close(aligned[key], result.aligned[0][key])


def test_merge_many_activation_objective_and_repair_targets(make_tiny_params):
    models = [make_tiny_params(s, WIDE) for s in range(3)]
    x = _images()
    result = merge_many(models, matcher="activation", repair=True, images=x, seed=1)
    assert result.rounds >= 1 and len(result.objective_trace) == result.rounds
    assert all(y >= x_ - 1e-9 for x_, y in zip(result.objective_trace, result.objective_trace[1:], strict=False))
    ends = hidden_stats(stack_params(result.aligned), x)
    got = hidden_stats(stack_params([result.params]), x)
    for (m, s), (em, es) in zip(got, ends, strict=True):
        torch.testing.assert_close(m[0], em.mean(0), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(s[0], es.mean(0), atol=1e-4, rtol=1e-4)
    for aligned, model in zip(result.aligned, models, strict=True):
        _same_function(aligned, model, x)  # aligning only permutes


def test_bad_options_are_merge_errors(make_tiny_params):
    a, b = make_tiny_params(0), make_tiny_params(1)
    with pytest.raises(MergeError, match="matcher"):
        merge_pair(a, b, matcher="magic")
    with pytest.raises(MergeError, match="images"):
        merge_pair(a, b, matcher="activation")
    with pytest.raises(MergeError, match="images"):
        merge_many([a, b], repair=True)
    with pytest.raises(MergeError, match="repair"):
        hierarchical_merge([a, b], repair="yes")
