"""Where the lab keeps things on disk: one home (store + weights) and one data directory (datasets)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir


def home_dir() -> Path:
    """The store home: `REBASIN_HOME`, else the user's data dir. Created on first use."""
    path = Path(os.environ.get("REBASIN_HOME") or user_data_dir("rebasin-lab", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Datasets live here (`REBASIN_DATA`, else `<home>/data`) so many stores can share one download."""
    env = os.environ.get("REBASIN_DATA")
    path = Path(env) if env else home_dir() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def db_path() -> Path:
    return home_dir() / "lab.duckdb"


def weights_dir() -> Path:
    path = home_dir() / "weights"
    path.mkdir(parents=True, exist_ok=True)
    return path
