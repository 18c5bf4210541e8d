"""Checkpoints of long merges: `<home>/checkpoints/<name>.safetensors`, one per unfinished tree.

A method that runs in rounds (MergeMany) hands the job its state after every round; the job keeps it here
under the tree's key, so a killed merge resumes with the next round instead of round 1. The file is
tensors plus JSON metadata in safetensors (no pickle), written atomically; a missing or unreadable one
simply means "start over". The job deletes it once the tree's root is stored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.files import atomic_write_bytes
from store.paths import home_dir

if TYPE_CHECKING:
    import torch

_NAME = re.compile(r"[0-9A-Za-z_-]{1,80}")


def checkpoints_dir() -> Path:
    return home_dir() / "checkpoints"


def checkpoint_path(name: str) -> Path:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"A checkpoint name must be 1-80 letters, digits, '-' or '_', got {name!r}.")
    return checkpoints_dir() / f"{name}.safetensors"


def save_checkpoint(name: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Replace the checkpoint `name` with these tensors and JSON-able metadata (atomically)."""
    from safetensors.torch import save as st_save

    data = st_save({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()},
                   metadata={"state": json.dumps(meta)})
    return atomic_write_bytes(checkpoint_path(name), data, durable=True)


def load_checkpoint(name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(tensors, metadata) of the checkpoint `name`, or None when there is none or it cannot be read."""
    path = checkpoint_path(name)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    from safetensors.torch import load as st_load

    try:
        tensors = st_load(data)
        size = int.from_bytes(data[:8], "little")  # safetensors: 8-byte header length, then the JSON header
        meta = json.loads(json.loads(data[8:8 + size])["__metadata__"]["state"])
    except Exception:  # noqa: BLE001 - a damaged checkpoint only costs the rounds it held
        return None
    return tensors, meta


def delete_checkpoint(name: str) -> None:
    try:
        checkpoint_path(name).unlink()
    except FileNotFoundError:
        pass
