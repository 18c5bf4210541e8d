"""Job specs: JSON round trips, stable keys, readable validation errors."""

from __future__ import annotations

import json

import pytest

from backend.jobs.spec import (
    EvaluateSpec,
    ExperimentSpec,
    MergeSpec,
    TrainSpec,
    canonical_key,
    spec_from_dict,
)

TRAIN = {"dataset": "fashion_mnist", "widths": [8, 6], "epochs": 1, "batch_size": 64}


def specs():
    return [
        TrainSpec(name="z", train=TRAIN, n_models=4, base_seed=3, zoo_kind="plain"),
        MergeSpec(model_ids=(1, 2, 3, 4), methods=("hierarchical", "merge_many"), lam=0.5, seed=1,
                  evaluate={"metrics": ["accuracy"], "subset": 10}),
        EvaluateSpec(model_ids=(5, 6), eval={"metrics": ["accuracy", "fgsm"], "fgsm_eps": [0.0, 0.01]}),
        ExperimentSpec(preset="quick", dataset="fashion_mnist", overrides={"epochs": 1}),
    ]


@pytest.mark.parametrize("spec", specs(), ids=lambda s: s.kind)
def test_round_trip_through_json(spec):
    d = json.loads(json.dumps(spec.to_dict()))
    again = spec_from_dict(d)
    assert again == spec
    assert again.key() == spec.key()
    assert spec_from_dict(json.dumps(d)) == spec
    assert d["kind"] == spec.kind
    spec.validate()


def test_key_is_16_hex_and_depends_on_content():
    a = TrainSpec(name="z", train=TRAIN, n_models=4)
    b = TrainSpec(name="z", train=TRAIN, n_models=5)
    assert len(a.key()) == 16 and int(a.key(), 16) >= 0
    assert a.key() == TrainSpec(name="z", train=dict(reversed(list(TRAIN.items()))), n_models=4).key()
    assert a.key() != b.key()
    assert canonical_key({"b": 1, "a": (1, 2)}) == canonical_key({"a": [1, 2], "b": 1})


def test_zoo_key_ignores_display_name_but_not_config():
    a = TrainSpec(name="first", train=TRAIN, n_models=4)
    b = TrainSpec(name="second", train={**TRAIN, "batch_size": 64, "lr": 1e-3}, n_models=4)
    c = TrainSpec(name="first", train={**TRAIN, "epochs": 2}, n_models=4)
    assert a.zoo_key() == b.zoo_key()  # defaults spelled out or not: same TrainConfig
    assert a.zoo_key() != c.zoo_key()
    assert a.key() != b.key()  # the job spec itself still differs


def test_merge_spec_normalises_lists_and_single_method():
    spec = MergeSpec(model_ids=[1, 2], methods="average", pairing=[[[0, 1]]])
    assert spec.model_ids == (1, 2) and spec.methods == ("average",)
    assert spec.pairing == (((0, 1),),)
    assert spec.to_dict()["pairing"] == [[[0, 1]]]
    assert spec.pairing_arg() == [[[0, 1]]]


# Keys computed before MergeSpec's option fields were derived from the merge registry: job dedupe and stored
# specs depend on them, so deriving the fields must not move a single one.
PINNED_MERGE_KEYS = [
    (MergeSpec(model_ids=(1, 2)), "e6f6884b7caca627"),
    (MergeSpec(model_ids=[3, 1, 2, 4], methods=("hierarchical", "merge_many", "average"), lam=0.25,
               pairing="random", seed=7), "46ecb6b9b65e236e"),
    (MergeSpec(model_ids=(1, 2, 3, 4), pairing=[[[0, 2], [1, 3]], [[0, 1]]], matcher="activation", repair=True,
               n_images=512, image_split="test", image_seed=3, evaluate={"metrics": ["accuracy"], "subset": 10}),
     "49114f54023c6b6a"),
    (MergeSpec(model_ids=(5, 6), methods="merge_many"), "a57a5968638b9566"),
]


@pytest.mark.parametrize("spec, key", PINNED_MERGE_KEYS, ids=lambda x: x if isinstance(x, str) else "")
def test_merge_spec_keys_and_field_order_are_pinned(spec, key):
    assert spec.key() == key
    assert list(spec.to_dict()) == ["kind", "model_ids", "methods", "lam", "pairing", "seed", "matcher", "repair",
                                    "n_images", "image_split", "image_seed", "evaluate"]
    assert spec_from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_merge_spec_pickles_compares_and_hashes_as_a_value():
    import pickle

    spec = MergeSpec(model_ids=(1, 2, 3, 4), pairing=[[[0, 2], [1, 3]], [[0, 1]]], lam=0.25)
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec and hash(again) == hash(spec) and again.key() == spec.key()
    assert spec != MergeSpec(model_ids=(1, 2, 3, 4), pairing=[[[0, 2], [1, 3]], [[0, 1]]], lam=0.5)
    assert MergeSpec((1, 2), "average", 0.25) == MergeSpec(model_ids=(1, 2), methods=("average",), lam=0.25)


@pytest.mark.parametrize("spec, words", [
    (TrainSpec(name="z", train={**TRAIN, "dataset": "imagenet"}, n_models=2), "unknown dataset"),
    (TrainSpec(name="z", train=TRAIN, n_models=0), "number of models"),
    (TrainSpec(name=" ", train=TRAIN, n_models=2), "name"),
    (TrainSpec(name="z", train=TRAIN, n_models=2, zoo_kind="l3"), "zoo kind"),
    (TrainSpec(name="z", train={**TRAIN, "widths": []}, n_models=2), "widths"),
    (TrainSpec(name="z", train={**TRAIN, "reg": "l1", "reg_strength": 1e-4}, n_models=2), "does not match"),
    (TrainSpec(name="z", train={**TRAIN, "colour": 1}, n_models=2), "colour"),
    (MergeSpec(model_ids=(1,)), "at least 2"),
    (MergeSpec(model_ids=(1, 1)), "distinct"),
    (MergeSpec(model_ids=(1, 2), methods=("magic",)), "unknown merge method"),
    (MergeSpec(model_ids=(1, 2), methods=()), "at least one"),
    (MergeSpec(model_ids=(1, 2), lam=1.5), "lam"),
    (MergeSpec(model_ids=(1, 2), pairing="zigzag"), "pairing"),
    (MergeSpec(model_ids=(1, 2), evaluate={"metrics": ["vibes"]}), "vibes"),
    (EvaluateSpec(model_ids=(), eval={}), "at least 1"),
    (EvaluateSpec(model_ids=(1,), eval={"subset": 0}), "subset"),
    (ExperimentSpec(preset="quick", dataset="nope"), "unknown dataset"),
    (ExperimentSpec(preset="", dataset="mnist"), "preset"),
])
def test_validate_raises_one_readable_sentence(spec, words):
    with pytest.raises(ValueError) as err:
        spec.validate()
    message = str(err.value)
    assert words in message and "\n" not in message


@pytest.mark.parametrize("d, words", [
    ({"kind": "bake"}, "unknown job kind"),
    ({"name": "z"}, "unknown job kind"),
    ({"kind": "train", "name": "z"}, "bad train spec"),
    ({"kind": "evaluate", "model_ids": [1], "eval": {}, "extra": 1}, "extra"),
])
def test_spec_from_dict_rejects_garbage(d, words):
    with pytest.raises(ValueError, match=words):
        spec_from_dict(d)
