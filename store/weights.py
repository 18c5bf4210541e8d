"""Model weights as content-addressed safetensors files: `<home>/weights/ab/abcd….safetensors`.

The name is the sha256 of the file's bytes, so identical weights are stored once, rows in DuckDB
point at them by hash, and a load can prove the bytes are the ones that were saved. The byte stream is
canonical (keys sorted, contiguous CPU tensors, no metadata), so equal state dicts give equal hashes.
Writes go to a temp file in the same folder, fsync, then `os.replace`: readers never see half a file.
No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError

from store.files import atomic_write_bytes
from store.paths import weights_dir

if TYPE_CHECKING:  # torch is imported only when tensors are (de)serialised: query modules stay light
    import torch

_HASH = re.compile(r"[0-9a-f]{64}")
_SUFFIX = ".safetensors"


class WeightsCorrupt(ValueError):
    """A weights file is missing, truncated or does not match its hash."""


def check_hash(h: str) -> str:
    if not isinstance(h, str) or not _HASH.fullmatch(h):
        raise ValueError(f"A weights hash must be 64 lowercase hex characters, got {h!r}.")
    return h


def weights_path(h: str) -> Path:
    """Where the file for hash `h` lives (it may not exist)."""
    check_hash(h)
    return weights_dir() / h[:2] / f"{h}{_SUFFIX}"


def has_weights(h: str) -> bool:
    return weights_path(h).is_file()


def weights_bytes(params: dict[str, torch.Tensor]) -> bytes:
    """The canonical safetensors serialisation of a state dict."""
    import torch
    from safetensors.torch import save as st_save

    if not isinstance(params, dict) or not params:
        raise ValueError("Weights must be a non-empty dict of name -> tensor.")
    canonical = {}
    for name in sorted(params):
        tensor = params[name]
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise ValueError(f"Weights entry {name!r} is not a named tensor.")
        # clone: own, contiguous CPU storage (safetensors refuses tensors that share memory)
        canonical[name] = tensor.detach().to("cpu").contiguous().clone()
    return st_save(canonical)


def save_weights(params: dict[str, torch.Tensor]) -> str:
    """Store a state dict; return the sha256 hex that names it. Same content -> same file, written once."""
    data = weights_bytes(params)
    h = hashlib.sha256(data).hexdigest()
    path = weights_path(h)
    if verify_weights(h) is None:  # the same bytes are there already (compared by hash, not by size)
        return h
    atomic_write_bytes(path, data, durable=True)  # new, missing or damaged: (re)write it
    return h


def verify_weights(h: str) -> str | None:
    """None when the file for `h` exists and hashes to `h`; else "missing" or "corrupt"."""
    path = weights_path(h)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "missing"
    return None if hashlib.sha256(data).hexdigest() == h else "corrupt"


def load_weights(h: str) -> dict[str, torch.Tensor]:
    """Read the state dict named `h`, verifying its bytes hash to `h` (CPU tensors)."""
    path = weights_path(h)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WeightsCorrupt(f"Weights file {path} is missing.") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != h:
        raise WeightsCorrupt(
            f"Weights file {path} is corrupt: its content hashes to {actual[:12]}…, not {h[:12]}… "
            "(truncated or modified on disk)."
        )
    from safetensors.torch import load as st_load

    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise WeightsCorrupt(f"Weights file {path} is not a valid safetensors file: {err}.") from err
