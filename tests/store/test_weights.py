"""store.weights: content-addressed safetensors, atomic writes, corruption detection."""

from __future__ import annotations

import hashlib

import pytest
import torch

from store.paths import weights_dir
from store.weights import WeightsCorrupt, has_weights, load_weights, save_weights, weights_path


def _all_files():
    return sorted(p for p in weights_dir().rglob("*") if p.is_file())


def test_round_trip_is_bit_identical(make_tiny_params):
    params = make_tiny_params(0)
    params["half"] = torch.randn(3, 2).to(torch.float16)
    params["counts"] = torch.arange(5, dtype=torch.int64)
    params["noncontig"] = torch.randn(4, 3).t()  # [3, 4] view, not contiguous
    h = save_weights(params)
    assert len(h) == 64 and weights_path(h) == weights_dir() / h[:2] / f"{h}.safetensors"
    assert hashlib.sha256(weights_path(h).read_bytes()).hexdigest() == h
    loaded = load_weights(h)
    assert sorted(loaded) == sorted(params)
    for name, tensor in params.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor)


def test_same_content_same_hash_one_file(make_tiny_params):
    a = make_tiny_params(1)
    reordered = {k: a[k].clone() for k in reversed(list(a))}
    h1, h2 = save_weights(a), save_weights(reordered)
    assert h1 == h2
    assert save_weights(make_tiny_params(2)) != h1
    files = _all_files()
    assert len(files) == 2
    assert not [p for p in files if p.name.startswith(".tmp-")]  # no temp files left behind


def test_existing_file_is_not_rewritten(make_tiny_params):
    h = save_weights(make_tiny_params(3))
    before = weights_path(h).stat().st_mtime_ns
    save_weights(make_tiny_params(3))
    assert weights_path(h).stat().st_mtime_ns == before


def test_shared_storage_tensors_are_saved():
    base = torch.randn(6)
    h = save_weights({"a": base[:3], "b": base[3:], "c": base})
    loaded = load_weights(h)
    assert torch.equal(loaded["c"], base) and torch.equal(loaded["b"], base[3:])


def test_flipped_byte_is_detected(make_tiny_params):
    h = save_weights(make_tiny_params(4))
    path = weights_path(h)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsCorrupt, match=str(path.name)):
        load_weights(h)


def test_truncated_and_missing_files_are_detected(make_tiny_params):
    h = save_weights(make_tiny_params(5))
    path = weights_path(h)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(WeightsCorrupt, match="corrupt"):
        load_weights(h)
    save_weights(make_tiny_params(5))  # a truncated file is repaired by saving again
    assert torch.equal(load_weights(h)["layers.0.weight"], make_tiny_params(5)["layers.0.weight"])
    path.unlink()
    assert not has_weights(h)
    with pytest.raises(WeightsCorrupt, match="missing"):
        load_weights(h)


@pytest.mark.parametrize("bad", ["", "abc", "../" + "a" * 61, "A" * 64, "g" * 64, "a" * 65, None, 7])
def test_bad_hash_strings_are_rejected(bad):
    with pytest.raises(ValueError, match="64 lowercase hex"):
        weights_path(bad)
    with pytest.raises(ValueError):
        load_weights(bad)


@pytest.mark.parametrize("bad", [{}, {"w": [1.0, 2.0]}, {3: torch.ones(1)}, [torch.ones(1)]])
def test_bad_params_are_rejected(bad):
    with pytest.raises(ValueError):
        save_weights(bad)
    assert _all_files() == []
