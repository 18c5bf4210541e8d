"""Resuming merges: a hierarchical tree given its already stored nodes builds only the rest, MergeMany from a
round checkpoint ends exactly where the uninterrupted run ends (tiny real MLPs, known answers: the
uninterrupted results)."""

from __future__ import annotations

import torch

from backend.merge import pair as pair_module
from backend.merge.merge_many import RoundState, merge_many
from backend.merge.registry import get_method
from backend.merge.tree import hierarchical_merge


def _same(a, b):
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def _leaves(make_tiny_params, n):
    return [make_tiny_params(seed) for seed in range(n)]


def test_a_hierarchical_tree_resumed_from_its_stored_nodes_builds_only_the_rest(make_tiny_params, monkeypatch):
    leaves = _leaves(make_tiny_params, 5)  # 5 -> 3 (one carried) -> 2 -> 1
    built = []
    full = hierarchical_merge(leaves, on_node=built.append)
    assert [n.index for n in built] == list(range(5, len(full)))  # every node above the leaves, in order
    assert all(n.params is not None for n in built)

    stored = {n.index: n.params for n in full[5:8]}  # an earlier run stored level 1 (2 merges + 1 carried)
    read = []

    class Lazy(dict):
        def __getitem__(self, key):
            read.append(key)
            return super().__getitem__(key)

    calls = []
    original = pair_module.merge_pair
    monkeypatch.setattr("backend.merge.tree.merge_pair", lambda *a, **k: calls.append(1) or original(*a, **k))
    again = []
    resumed = hierarchical_merge(leaves, stored=Lazy(stored), on_node=again.append)
    assert [n.index for n in again] == list(range(8, len(full)))  # only the nodes not stored yet
    assert len(calls) == sum(len(n.parents) == 2 for n in full[8:])
    assert sorted(set(read)) == [5, 6, 7]  # stored nodes read only as parents of nodes still to build
    _same(resumed[-1].params, full[-1].params)
    assert [(n.level, n.parents) for n in resumed] == [(n.level, n.parents) for n in full]


def test_merge_many_resumed_from_a_round_checkpoint_ends_like_the_uninterrupted_run(make_tiny_params):
    models = _leaves(make_tiny_params, 5)
    states = []
    full = merge_many(models, seed=3, device="cpu", on_checkpoint=states.append)
    assert full.rounds >= 3 and [s.rounds for s in states] == list(range(1, full.rounds))

    tensors, meta = states[0].to_tensors()  # what the job writes to its checkpoint file after round 1
    state = RoundState.from_tensors(tensors, meta)
    later = []
    resumed = merge_many(models, seed=3, device="cpu", checkpoint=state, on_checkpoint=later.append)
    assert resumed.rounds == full.rounds
    assert [s.rounds for s in later] == list(range(2, full.rounds))  # round 1 was not run again
    torch.testing.assert_close(torch.tensor(resumed.objective_trace), torch.tensor(full.objective_trace))
    _same(resumed.params, full.params)


def test_activation_merge_many_resumes_too(make_tiny_params):
    models = _leaves(make_tiny_params, 4)
    images = torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    states = []
    full = merge_many(models, seed=1, matcher="activation", images=images, on_checkpoint=states.append)
    if not states:  # converged in one round: nothing to resume, and nothing was checkpointed
        assert full.rounds == 1
        return
    resumed = merge_many(models, seed=1, matcher="activation", images=images,
                         checkpoint=RoundState.from_tensors(*states[0].to_tensors()))
    assert resumed.rounds == full.rounds
    _same(resumed.params, full.params)


def test_a_checkpoint_that_does_not_fit_is_ignored(make_tiny_params):
    models = _leaves(make_tiny_params, 4)
    states = []
    full = merge_many(models, seed=0, device="cpu", on_checkpoint=states.append)
    other = merge_many(models[:3], seed=0, device="cpu", checkpoint=states[0])  # 3 models, a 4-model state
    plain = merge_many(models[:3], seed=0, device="cpu")
    _same(other.params, plain.params)
    wrong_matcher = RoundState(states[0].perms, states[0].trace, states[0].rounds, states[0].rng, "activation")
    _same(merge_many(models, seed=0, device="cpu", checkpoint=wrong_matcher).params, full.params)


def test_the_registry_hands_resume_arguments_only_to_methods_that_take_them(make_tiny_params):
    leaves = _leaves(make_tiny_params, 4)
    assert get_method("hierarchical").resume_keywords() == {"stored", "on_node"}
    # one-step methods take `stored` only to hand back a root an interrupted run stored
    assert get_method("merge_many").resume_keywords() == {"stored", "checkpoint", "on_checkpoint"}
    assert get_method("average").resume_keywords() == {"stored"}
    seen = []
    nodes = get_method("average")(leaves, stored={}, on_node=seen.append, checkpoint=None, on_checkpoint=print)
    assert [n.index for n in seen] == [4] and seen[0] is nodes[-1]  # called after a method that cannot
    seen.clear()
    again = get_method("merge_many")(leaves, stored={4: nodes[-1].params}, on_node=seen.append)
    assert seen == [] and again[-1].params is nodes[-1].params  # a stored root is handed back, not rebuilt
