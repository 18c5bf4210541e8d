"""Merge methods, one per file (mergekit style); `registry.get_method(name)` picks one by name."""

from backend.merge.average import naive_average
from backend.merge.common import MergeError, check_compatible, interpolate
from backend.merge.ensemble import EnsembleModel
from backend.merge.merge_many import MergeManyResult, merge_many
from backend.merge.pair import PairMerge, merge_pair
from backend.merge.registry import MERGE_METHODS, get_method
from backend.merge.tree import TreeNode, hierarchical_merge, plan_tree

__all__ = [
    "MERGE_METHODS",
    "EnsembleModel",
    "MergeError",
    "MergeManyResult",
    "PairMerge",
    "TreeNode",
    "check_compatible",
    "get_method",
    "hierarchical_merge",
    "interpolate",
    "merge_many",
    "merge_pair",
    "naive_average",
    "plan_tree",
]
