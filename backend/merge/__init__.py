"""Merge methods, one per file (mergekit style); `registry.get_method(name)` picks one by name.

Names are imported lazily (PEP 562) so that `backend.merge.registry` stays torch-free.
"""

from __future__ import annotations

import importlib
import sys
import types

_WHERE = {
    "naive_average": "average", "MergeError": "errors", "check_compatible": "common", "interpolate": "common",
    "MergeManyResult": "merge_many", "merge_many": "merge_many",
    "PairMerge": "pair", "merge_pair": "pair", "MERGE_METHODS": "registry", "get_method": "registry",
    "TreeNode": "tree", "hierarchical_merge": "tree", "plan_tree": "tree",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'backend.merge' has no attribute {name!r}")
    return getattr(importlib.import_module(f"backend.merge.{_WHERE[name]}"), name)


class _Package(types.ModuleType):
    """`backend.merge.merge_many` is the function, as with eager imports, even after its module is imported
    (importing a submodule would otherwise bind the module over the lazily exported function)."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
