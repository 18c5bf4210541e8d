"""backend.data on synthetic tensors: augmentation semantics, idx parsing, sources, errors."""

from __future__ import annotations

import gzip
import struct

import pytest
import torch

from backend import data
from backend.data import (
    DatasetUnavailable,
    augment_batch,
    crop_flip,
    dataset_info,
    dataset_status,
    load_split,
    parse_idx,
    read_idx,
    to_float,
)


def _images(b=5, c=3, h=8, w=8):
    return torch.arange(b * c * h * w, dtype=torch.float32).reshape(b, c, h, w) + 1  # no zeros inside


def test_augment_shapes_and_determinism():
    x = _images()
    a = augment_batch(x, torch.Generator().manual_seed(3))
    b = augment_batch(x, torch.Generator().manual_seed(3))
    c = augment_batch(x, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_crop_flip_semantics_on_known_image():
    x = _images(b=3)
    pad = 2
    # centre crop without flip is the identity; centre crop with flip mirrors the width axis
    dy = torch.tensor([pad, pad, 0])
    dx = torch.tensor([pad, pad, 0])
    flipped = torch.tensor([False, True, False])
    out = crop_flip(x, dy, dx, flipped, pad)
    assert torch.equal(out[0], x[0])
    assert torch.equal(out[1], x[1].flip(-1))
    # offset (0, 0): the image moves down-right by pad; the top rows and left columns are zero padding
    assert torch.equal(out[2, :, pad:, pad:], x[2, :, :-pad, :-pad])
    assert (out[2, :, :pad, :] == 0).all() and (out[2, :, :, :pad] == 0).all()


def test_crop_flip_matches_per_image_reference():
    x = _images(b=6, c=2, h=5, w=7)
    g = torch.Generator().manual_seed(0)
    pad = 3
    dy, dx, flipped = data.crop_flip_params(6, g, pad, True)
    out = crop_flip(x, dy, dx, flipped, pad)
    padded = torch.nn.functional.pad(x, (pad,) * 4)
    for i in range(6):
        ref = padded[i, :, dy[i]:dy[i] + 5, dx[i]:dx[i] + 7]
        ref = ref.flip(-1) if flipped[i] else ref
        assert torch.equal(out[i], ref)


def test_flip_only_gives_image_or_its_mirror():
    x = _images(b=64, c=1, h=4, w=4)
    out = augment_batch(x, torch.Generator().manual_seed(1), pad=0, flip=True)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert (same | mirrored).all()
    assert same.any() and mirrored.any()
    assert torch.equal(augment_batch(x, torch.Generator().manual_seed(1), pad=0, flip=False), x)


def test_augment_rejects_bad_input():
    with pytest.raises(ValueError, match="B, C, H, W"):
        augment_batch(torch.zeros(4, 4), torch.Generator())
    with pytest.raises(ValueError, match="pad"):
        augment_batch(torch.zeros(1, 1, 4, 4), torch.Generator(), pad=-1)


def _idx_bytes(t: torch.Tensor, code: int = 0x08, fmt: str = "B") -> bytes:
    header = bytes([0, 0, code, t.dim()]) + struct.pack(f">{t.dim()}i", *t.shape)
    return header + struct.pack(f">{t.numel()}{fmt}", *t.flatten().tolist())


def test_parse_idx_hand_written():
    raw = bytes([0, 0, 0x08, 3]) + struct.pack(">3i", 2, 2, 3) + bytes(range(12))
    t = parse_idx(raw)
    assert t.dtype == torch.uint8 and t.shape == (2, 2, 3)
    assert t[1, 0, 2].item() == 8
    ints = torch.tensor([[1, -2], [70000, 3]], dtype=torch.int32)
    assert torch.equal(parse_idx(_idx_bytes(ints, 0x0C, "i")), ints)  # big-endian multi-byte values


def test_parse_idx_rejects_garbage(tmp_path):
    with pytest.raises(ValueError, match="magic"):
        parse_idx(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="header"):
        parse_idx(bytes([0, 0, 8, 1]) + struct.pack(">i", 5) + b"abc")
    path = tmp_path / "x-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(torch.tensor([3, 1, 4], dtype=torch.uint8))))
    assert read_idx(path).tolist() == [3, 1, 4]


def _fake_debian(folder, n_train=7, n_test=3):
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        y = torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(x)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(y)))
    return folder


def test_debian_copy_then_tensor_cache(tmp_path, monkeypatch):
    folder = _fake_debian(tmp_path / "debian")
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", folder)
    data.clear_memo()
    assert dataset_status("fashion_mnist") == "available"
    x, y = load_split("fashion_mnist", True, download=False)
    assert x.shape == (7, 1, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert load_split("fashion_mnist", True) is load_split("fashion_mnist", True)  # memo
    load_split("fashion_mnist", False)
    # the Debian copy disappears: our own cache still answers, in a fresh process (memo cleared)
    for f in folder.iterdir():
        f.unlink()
    data.clear_memo()
    assert dataset_status("fashion_mnist") == "available"
    x2, y2 = load_split("fashion_mnist", True, download=False)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not list((data.data_dir() / "cache").glob("*.tmp"))
    data.clear_memo()


def test_unavailable_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "nowhere")
    monkeypatch.setattr(data, "_host_reachable", lambda url, timeout=1.5: False)
    data.clear_memo()
    assert dataset_status("fashion_mnist") == "missing"
    with pytest.raises(DatasetUnavailable, match="apt-get install dataset-fashion-mnist"):
        load_split("fashion_mnist", True, download=False)
    with pytest.raises(DatasetUnavailable, match="CIFAR-10 is not on this machine"):
        load_split("cifar10", False, download=False)
    monkeypatch.setattr(data, "_host_reachable", lambda url, timeout=1.5: True)
    assert dataset_status("mnist") == "downloadable"


def test_unknown_dataset():
    with pytest.raises(ValueError, match="cifar10, fashion_mnist, mnist"):
        dataset_info("cifar100")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_split("imagenet", True)
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_status("svhn")


def test_dataset_info_constants():
    info = dataset_info("cifar10")
    assert info.in_shape == (3, 32, 32) and len(info.classes) == info.num_classes == 10
    assert info.mean == (0.4914, 0.4822, 0.4465) and info.std == (0.2470, 0.2435, 0.2616)
    assert dataset_info("fashion_mnist").mean == (0.2860,) and dataset_info("mnist").std == (0.3081,)


def test_to_float_range():
    x = torch.tensor([0, 128, 255], dtype=torch.uint8)
    f = to_float(x)
    assert f.dtype == torch.float32 and f[0] == 0 and f[2] == 1 and x.dtype == torch.uint8


def test_crop_flip_on_uint8_matches_float():
    x = torch.randint(0, 256, (4, 3, 6, 6), dtype=torch.uint8)
    dy, dx, flipped = data.crop_flip_params(4, torch.Generator().manual_seed(2), 4, True)
    out = crop_flip(x, dy, dx, flipped, 4)
    assert out.dtype == torch.uint8
    assert torch.equal(out.float(), crop_flip(x.float(), dy, dx, flipped, 4))


@pytest.mark.parametrize("damage", ["truncate", "flip", "no_hash"])
def test_a_damaged_dataset_cache_is_detected_and_rebuilt(tmp_path, monkeypatch, damage):
    folder = _fake_debian(tmp_path / "debian")
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", folder)
    data.clear_memo()
    x, y = load_split("fashion_mnist", True, download=False)
    cache = data._cache_path("fashion_mnist", True)
    raw = bytearray(cache.read_bytes())
    if damage == "truncate":
        cache.write_bytes(bytes(raw[: len(raw) // 2]))
    elif damage == "flip":
        raw[-10] ^= 0xFF  # a pixel: same size, valid header; only the content hash notices
        cache.write_bytes(bytes(raw))
    else:  # a cache written before hashes were stored
        from safetensors.torch import save

        cache.write_bytes(save({"x": (x + 1).contiguous(), "y": y.contiguous()}))
    data.clear_memo()
    x2, y2 = load_split("fashion_mnist", True, download=False)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    data.clear_memo()
    assert data._read_cache(cache) is not None  # rewritten whole
    # damaged and no source left: one sentence naming the cache file
    cache.write_bytes(b"junk")
    for f in folder.iterdir():
        f.unlink()
    monkeypatch.setattr(data, "_load_torchvision", lambda *a, **k: (_ for _ in ()).throw(
        data.DatasetUnavailable("fashion_mnist is not on this machine")))
    with pytest.raises(data.DatasetUnavailable, match=str(cache)):
        load_split("fashion_mnist", True, download=False)
    data.clear_memo()
