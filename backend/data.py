"""Datasets as whole in-memory uint8 tensors, and batched augmentation on tensors.

A split is loaded once per process (memo) from the first source that has it:
  1. our tensor cache  <data_dir>/cache/{name}-{split}.safetensors   (fast; written after any other source)
  2. Fashion-MNIST only: Debian's offline copy in /usr/share/datasets/fashion-mnist (idx .gz files)
  3. torchvision.datasets under <data_dir> (downloads when `download=True` and the machine is online)
Nothing here is pickled: the cache is safetensors, written to a temp name then `os.replace`d.
"""

from __future__ import annotations

import gzip
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from safetensors.torch import save
from torch import Tensor

from backend.datasets import DATASETS, DatasetUnavailable  # noqa: F401 - re-exported
from store.files import atomic_write_bytes
from store.paths import data_dir

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    in_shape: tuple[int, int, int]  # C, H, W
    num_classes: int
    mean: tuple[float, ...]  # per channel, pixels in [0, 1]
    std: tuple[float, ...]
    classes: tuple[str, ...]


_INFO = {
    "cifar10": DatasetInfo(
        "cifar10", (3, 32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    ),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", (1, 28, 28), 10, (0.2860,), (0.3530,),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
         "Ankle boot"),
    ),
    "mnist": DatasetInfo(
        "mnist", (1, 28, 28), 10, (0.1307,), (0.3081,), tuple(str(d) for d in range(10)),
    ),
}
_TITLE = {"cifar10": "CIFAR-10", "fashion_mnist": "Fashion-MNIST", "mnist": "MNIST"}
# Where torchvision downloads from (probed by dataset_status) and the files it leaves under data_dir().
_DOWNLOAD_URL = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
}
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")
_TORCHVISION_FILES = {
    "cifar10": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)] + ["cifar-10-batches-py/test_batch"],
    "fashion_mnist": [f"FashionMNIST/raw/{f}" for f in _IDX_FILES],
    "mnist": [f"MNIST/raw/{f}" for f in _IDX_FILES],
}


def dataset_info(name: str) -> DatasetInfo:
    if name not in _INFO:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return _INFO[name]


def _unavailable_message(name: str, download: bool) -> str:
    title = _TITLE[name]
    why = "could not be downloaded" if download else "downloading is switched off"
    where = data_dir()
    if name == "fashion_mnist":
        fix = ("install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or connect to "
               "the internet")
    elif name == "cifar10":
        fix = (f"connect to the internet, or unpack cifar-10-python.tar.gz into {where} "
               "(so that it holds cifar-10-batches-py/)")
    else:
        fix = f"connect to the internet, or put the four MNIST idx files into {where / 'MNIST' / 'raw'}"
    return f"{title} is not on this machine and {why}: {fix}"


# ---------------------------------------------------------------------------------------------- idx files

_IDX_DTYPES = {0x08: torch.uint8, 0x09: torch.int8, 0x0B: torch.int16, 0x0C: torch.int32,
               0x0D: torch.float32, 0x0E: torch.float64}


def parse_idx(raw: bytes) -> Tensor:
    """Decode LeCun's idx format: 2 zero bytes, a dtype code, ndim, ndim big-endian int32 dims, data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError("not an idx file: bad magic number")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    dims = struct.unpack(f">{ndim}i", raw[4:4 + 4 * ndim])
    data = raw[4 + 4 * ndim:]
    count = 1
    for d in dims:
        count *= d
    itemsize = torch.empty((), dtype=dtype).element_size()
    if len(data) != count * itemsize:
        raise ValueError(f"idx file holds {len(data)} data bytes, its header promises {count * itemsize}")
    flat = torch.frombuffer(bytearray(data), dtype=dtype)
    if itemsize > 1:  # idx is big-endian; torch reads native (little-endian) order
        flat = flat.view(torch.uint8).view(-1, itemsize).flip(1).contiguous().view(dtype).view(-1)
    return flat.reshape(dims)


def read_idx(path: Path) -> Tensor:
    raw = Path(path).read_bytes()
    return parse_idx(gzip.decompress(raw) if str(path).endswith(".gz") else raw)


def _load_idx_split(folder: Path, train: bool) -> tuple[Tensor, Tensor]:
    prefix = "train" if train else "t10k"
    x = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")  # [N, H, W]
    y = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")  # [N]
    return x[:, None].contiguous(), y.long()


def _debian_has_fashion() -> bool:
    return all((DEBIAN_FASHION_DIR / f"{f}.gz").exists() for f in _IDX_FILES)


# ---------------------------------------------------------------------------------------------- sources

def _cache_path(name: str, train: bool) -> Path:
    return data_dir() / "cache" / f"{name}-{'train' if train else 'test'}.safetensors"


def _content_hash(x: Tensor, y: Tensor) -> str:
    import hashlib

    digest = hashlib.sha256()
    for t in (x, y):
        digest.update(str((t.dtype, tuple(t.shape))).encode())
        digest.update(t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _write_cache(path: Path, x: Tensor, y: Tensor) -> None:
    """The split as safetensors, with the sha256 of its contents in the metadata (checked on every read)."""
    x, y = x.contiguous(), y.contiguous()
    atomic_write_bytes(path, save({"x": x, "y": y}, metadata={"sha256": _content_hash(x, y)}))


def _read_cache(path: Path) -> tuple[Tensor, Tensor] | None:
    """The cached split, or None when the file is truncated, modified or from before hashes were stored
    (the caller rebuilds it from the source files)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            expected = (f.metadata() or {}).get("sha256")
            x, y = f.get_tensor("x"), f.get_tensor("y")
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError):
        return None
    if expected is None or _content_hash(x, y) != expected:
        return None
    return x, y


def _load_torchvision(name: str, train: bool, download: bool) -> tuple[Tensor, Tensor]:
    import torchvision.datasets as tvd

    cls = {"cifar10": tvd.CIFAR10, "fashion_mnist": tvd.FashionMNIST, "mnist": tvd.MNIST}[name]
    try:
        ds = cls(root=str(data_dir()), train=train, download=download)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; "Dataset not found" a RuntimeError
        raise DatasetUnavailable(_unavailable_message(name, download)) from err
    if name == "cifar10":
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # [N, 32, 32, 3] -> [N, 3, 32, 32]
        y = torch.tensor(ds.targets, dtype=torch.long)
    else:
        x = ds.data[:, None].to(torch.uint8).contiguous()  # [N, 1, 28, 28]
        y = ds.targets.long()
    return x, y


_MEMO: dict[tuple[str, bool, str], tuple[Tensor, Tensor]] = {}
_MEMO_LOCK = threading.Lock()


def load_split(name: str, train: bool, *, download: bool = True) -> tuple[Tensor, Tensor]:
    """(x uint8 [N, C, H, W], y int64 [N]) for one split, loaded once per process and data dir.

    The returned tensors are shared by every caller in this process: treat them as read-only.
    """
    dataset_info(name)
    cache = _cache_path(name, train)
    key = (name, train, str(cache))
    with _MEMO_LOCK:
        if key in _MEMO:
            return _MEMO[key]
        cached = _read_cache(cache) if cache.exists() else None
        if cached is not None:
            x, y = cached
        else:  # no cache, or a damaged one: (re)build it from the source files
            try:
                if name == "fashion_mnist" and _debian_has_fashion():
                    x, y = _load_idx_split(DEBIAN_FASHION_DIR, train)
                else:
                    x, y = _load_torchvision(name, train, download)
            except DatasetUnavailable as err:
                if cache.exists():
                    raise DatasetUnavailable(f"The dataset cache {cache} is damaged and cannot be rebuilt: "
                                             f"{err}") from err
                raise
            _write_cache(cache, x, y)
        _MEMO[key] = (x, y)
        return x, y


def clear_memo() -> None:
    """Forget the in-process copies (tests; or to free memory)."""
    with _MEMO_LOCK:
        _MEMO.clear()


# ---------------------------------------------------------------------------------------------- status

_PROBE_TTL_S = 300.0
_PROBES: dict[str, tuple[float, bool]] = {}


def _host_reachable(url: str, timeout: float = 1.5) -> bool:
    """TCP connect to the download host, in a daemon thread so a hanging DNS lookup cannot block us."""
    now = time.monotonic()
    if url in _PROBES and now - _PROBES[url][0] < _PROBE_TTL_S:
        return _PROBES[url][1]
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result = [False]

    def probe() -> None:
        try:
            with socket.create_connection((parsed.hostname, port), timeout=timeout):
                result[0] = True
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    _PROBES[url] = (now, result[0])
    return result[0]


def dataset_status(name: str) -> str:
    """"available" (a local copy exists), "downloadable" (its download host answers now) or "missing".

    The network probe is a TCP connect with a 1.5 s limit, remembered for 5 minutes.
    """
    dataset_info(name)
    if _cache_path(name, True).exists() and _cache_path(name, False).exists():
        return "available"
    if name == "fashion_mnist" and _debian_has_fashion():
        return "available"
    if all((data_dir() / f).exists() for f in _TORCHVISION_FILES[name]):
        return "available"
    return "downloadable" if _host_reachable(_DOWNLOAD_URL[name]) else "missing"


# ---------------------------------------------------------------------------------------------- tensors

def to_float(x: Tensor) -> Tensor:
    """uint8 pixels -> float32 in [0, 1], same shape and device."""
    return x.to(torch.float32).div_(255.0)


def crop_flip_params(n: int, generator: torch.Generator, pad: int = 4, flip: bool = True):
    """Per-sample random crop offsets dy, dx in [0, 2*pad] and flip flags, drawn from `generator`."""
    dev = generator.device
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=dev)
    flipped = (torch.randint(0, 2, (n,), generator=generator, device=dev) == 1) if flip else \
        torch.zeros(n, dtype=torch.bool, device=dev)
    return dy, dx, flipped


def crop_flip(x: Tensor, dy: Tensor, dx: Tensor, flipped: Tensor, pad: int = 4) -> Tensor:
    """Crop each zero-padded image at its own (dy, dx), mirroring it where `flipped`: one gather, no loop.

    x [B, C, H, W]; dy, dx [B] in [0, 2*pad]; flipped [B] bool. Output pixel (i, j) of sample b is padded
    pixel (dy_b + i, dx_b + j'), with j' = W-1-j when flipped (crop then flip, as torchvision does).
    """
    b, c, h, w = x.shape
    dy, dx, flipped = dy.to(x.device), dx.to(x.device), flipped.to(x.device)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad)) if pad else x  # [B, C, H+2p, W+2p]
    pw = w + 2 * pad
    cols = torch.arange(w, device=x.device)
    cols = torch.where(flipped[:, None], w - 1 - cols, cols) + dx[:, None]  # [B, W]
    rows = torch.arange(h, device=x.device) + dy[:, None]  # [B, H]
    index = (rows[:, :, None] * pw + cols[:, None, :]).reshape(b, 1, h * w).expand(b, c, h * w)
    return padded.reshape(b, c, -1).gather(2, index).reshape(b, c, h, w)


def augment_batch(x: Tensor, generator: torch.Generator, pad: int = 4, flip: bool = True) -> Tensor:
    """Random crop (zero padding `pad`) + horizontal flip for a whole batch; deterministic per generator."""
    if x.dim() != 4:
        raise ValueError(f"augment_batch needs images [B, C, H, W], got shape {tuple(x.shape)}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    dy, dx, flipped = crop_flip_params(x.shape[0], generator, pad, flip)
    return crop_flip(x, dy, dx, flipped, pad)
