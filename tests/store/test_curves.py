"""Curve rows: save replaces a (pair, config) atomically, filters by pair / model / key, bad rows refused."""

from __future__ import annotations

import pytest

from store import curves as store_curves
from store.models import add_model
from store.weights import save_weights


@pytest.fixture
def two_models(make_tiny_params):
    weights = save_weights(make_tiny_params(0))
    return [add_model(kind="trained", dataset="fashion_mnist", widths=[8, 6], config={}, weights=weights,
                      key=f"m{i}") for i in range(3)]


def _rows(align="weight", shift=0.0):
    return [(align, False, "test", 0.0, "loss", 1.0 + shift), (align, False, "test", 1.0, "loss", 2.0 + shift),
            (align, False, "test", None, "loss_barrier", 0.5 + shift)]


def test_save_replace_filter(two_models):
    a, b, c = two_models
    store_curves.register_curve_config("k1", {"lam_grid": [0, 1]})
    store_curves.register_curve_config("k1", {"other": 1})  # first registration wins
    assert store_curves.get_curve_config("k1") == {"lam_grid": [0, 1]}
    assert store_curves.save_curves(a, b, "k1", _rows()) == 3
    assert store_curves.save_curves(a, b, "k1", _rows(shift=1.0)) == 3  # replaces, never appends
    assert store_curves.save_curves(a, c, "k1", _rows("none")) == 3
    assert store_curves.save_curves(b, c, "k2", _rows()) == 3
    rows = store_curves.curves(pairs=[(a, b)])
    assert len(rows) == 3 and list(rows.columns) == store_curves.COLUMNS
    assert sorted(rows["value"]) == [1.5, 2.0, 3.0]
    assert len(store_curves.curves(model_ids=[c])) == 6
    assert len(store_curves.curves(curve_key="k2")) == 3
    assert len(store_curves.curves(pairs=[(a, b), (b, c)], barriers_only=True)) == 2
    assert store_curves.has_curves(a, b, "k1") and not store_curves.has_curves(b, a, "k1")
    configs = store_curves.list_curve_configs()
    assert dict(zip(configs["key"], configs["n_pairs"], strict=True)) == {"k1": 2}


def test_bad_rows_keep_the_old_ones(two_models):
    a, b, _ = two_models
    store_curves.save_curves(a, b, "k1", _rows())
    with pytest.raises(ValueError, match="align"):
        store_curves.save_curves(a, b, "k1", [*_rows(), ("magic", False, "test", 0.5, "loss", 1.0)])
    with pytest.raises(ValueError, match="no model 999"):
        store_curves.save_curves(a, 999, "k1", _rows())
    assert len(store_curves.curves(pairs=[(a, b)])) == 3
