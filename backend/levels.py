"""Who belongs to which group at which merge level, and the per-level statistics read from DuckDB.

The central frame is `level_metrics`: one row per (model, metric, param) tagged with the merge level and the
group it belongs to, so every chart and table is a group-by on it. Level 0 means an unmerged model (the
leaves of a tree, or a zoo's models). Everything here is a pure read (no torch, no writes).
"""

from __future__ import annotations

import pandas as pd

from backend.leaves import widths_label
from backend.listings import int_ids, pairing_text, zoo_frame
from backend.merge.registry import alignment_suffix
from store import evaluations as store_evals
from store import reads as store_reads
from store import trees as store_trees
from store import zoos as store_zoos
from store.jsonutil import decoded

LEVEL_COLUMNS = ["model_id", "tree_id", "method", "level", "kind", "zoo_kind", "group", "eval_key",
                 "metric", "param", "value"]
TABLE_COLUMNS = ["group", "method", "zoo_kind", "level", "metric", "param", "mean", "std", "n"]
ZOO_GROUPS = {"plain": "unmerged zoo", "l1": "L1 zoo", "l2": "L2 zoo"}


def _tree_suffixes(tree_ids: set[int]) -> dict[int, str]:
    """tree id -> alignment_suffix of its config, for the trees that have one (one query)."""
    trees = store_trees.list_trees()
    if trees.empty or "config" not in trees.columns:
        return {}
    out = {}
    for tid, config in zip(trees["id"].astype(int), trees["config"], strict=True):
        if tid in tree_ids and isinstance(config, str) and ("matcher" in config or "repair" in config):
            suffix = alignment_suffix(decoded(config, {}))
            if suffix:
                out[tid] = suffix
    return out


LEAVES = "unmerged leaves"  # the level-0 nodes of every selected tree, drawn once as one group
MEMBER_COLUMNS = ["model_id", "tree_id", "method", "level", "kind", "zoo_kind", "group", "zoo_id"]


def level_members(*, tree_ids=None, zoo_ids=None, include_carried: bool = False) -> pd.DataFrame:
    """Who is in the selection, with the labels every chart groups by (MEMBER_COLUMNS), in two queries.

    Tree nodes get method = the tree's method and group = method (plus " · L1 zoo" when the leaves come
    from a regularised zoo); zoo models get method "zoo" and group "L1 zoo" / "L2 zoo" / "unmerged zoo".
    Nodes carried up unchanged at an odd-count level are not merges and are left out (include_carried=True
    keeps them). A leaf shared by several trees appears once per tree here; `stat_members` folds them.
    """
    zoos = zoo_frame()
    zoo_kinds = dict(zip(zoos["zoo_id"].astype(int), zoos["zoo_kind"], strict=True))
    tree_ids, zoo_ids = int_ids(tree_ids) or [], int_ids(zoo_ids) or []
    for zid in zoo_ids:
        if zid not in zoo_kinds:
            raise ValueError(f"zoo {zid} does not exist")
    parts = []
    if tree_ids:
        nodes = store_reads.tree_members(tree_ids)
        missing = sorted(set(tree_ids) - set(nodes["tree_id"].astype(int)))
        if missing and any(store_trees.get_tree(t) is None for t in missing):
            raise ValueError(f"tree {missing[0]} does not exist")
        if not include_carried:
            nodes = nodes[~nodes["carried"].astype(bool)].reset_index(drop=True)
        if not nodes.empty:
            nodes["zoo_kind"] = nodes["zoo_id"].map(lambda z: zoo_kinds.get(int(z)) if pd.notna(z) else None)
            tree_kind = {}
            for tid, leaves in nodes[nodes["is_leaf"]].groupby("tree_id"):
                kinds = {k for k in leaves["zoo_kind"] if k is not None}
                tree_kind[int(tid)] = kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else None)
            nodes["zoo_kind"] = nodes["tree_id"].map(lambda t: tree_kind.get(int(t)))
            variants = _tree_suffixes(set(nodes["tree_id"].astype(int)))  # REPAIR / activation-matching trees
            methods = [m + variants.get(int(t), "") for m, t in zip(nodes["method"], nodes["tree_id"], strict=True)]
            nodes["group"] = [m if k in (None, "plain") else f"{m} · {k.upper()} zoo"
                              for m, k in zip(methods, nodes["zoo_kind"], strict=True)]
            parts.append(nodes[MEMBER_COLUMNS])
    if zoo_ids:
        members = store_reads.zoo_members(zoo_ids)
        parts.append(pd.DataFrame({
            "model_id": members["model_id"].astype(int), "tree_id": pd.NA, "zoo_id": members["zoo_id"].astype(int),
            "method": "zoo", "level": 0,
            "kind": members["kind"], "zoo_kind": members["zoo_kind"],
            "group": members["zoo_kind"].map(lambda k: ZOO_GROUPS.get(k, k)),
        }))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=MEMBER_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    out["tree_id"] = out["tree_id"].astype("Int64")
    out["zoo_id"] = out["zoo_id"].astype("Int64")
    out["level"] = out["level"].astype(int)
    return out


def leaves_group(zoo_kind) -> str:
    """The one group of unmerged tree leaves (per regularisation: L1/L2 leaves are not plain leaves)."""
    return LEAVES if zoo_kind in (None, "plain", "mixed") or pd.isna(zoo_kind) else f"{LEAVES} · {zoo_kind.upper()}"


def is_leaves_group(group: str) -> bool:
    return str(group).startswith(LEAVES)


def fold_leaves(frame: pd.DataFrame) -> pd.DataFrame:
    """Tree leaves (level 0, not a zoo reference) relabelled as the LEAVES group with method "leaves"."""
    leaves = (frame["method"] != "zoo") & (frame["level"] == 0)
    out = frame.copy()
    out["group"] = out["group"].astype(object)
    out.loc[leaves, "group"] = [leaves_group(k) for k in out.loc[leaves, "zoo_kind"]]
    out.loc[leaves, "method"] = "leaves"
    out["tree_id"] = out["tree_id"].astype("Int64")
    out.loc[leaves, "tree_id"] = pd.NA
    return out


# Settings a series can be split (and coloured) by: name -> label. Tree settings describe how a merge was
# made and do not apply to unmerged leaves; zoo settings describe the models themselves and apply to all.
TREE_SETTINGS = {"method": "method", "leaves": "tree size", "lam": "λ", "pairing": "pairing", "seed": "merge seed"}
ZOO_SETTINGS = {"zoo": "zoo", "dataset": "dataset", "widths": "widths", "reg": "regularisation"}
SETTINGS = {**TREE_SETTINGS, **ZOO_SETTINGS}


def _setting_text(name: str, value) -> str:
    if name == "leaves":
        return f"{value} leaves"
    if name == "lam":
        return f"λ {value}"
    if name == "seed":
        return f"seed {value}"
    if name == "zoo":
        return f"zoo #{value}"
    if name == "pairing":
        return f"pairing {value}"
    return str(value)


def member_settings(members: pd.DataFrame) -> pd.DataFrame:
    """Members with one text column per setting in SETTINGS ('' where a setting does not apply), read from
    the trees' and zoos' recorded configs: a tree's zoo settings are those of its leaves ('mixed' if they differ)."""
    out = members.copy()
    names = [n for n in SETTINGS if n != "method"]  # the members' own method column is the method setting
    for name in names:
        out[name] = ""
    if out.empty:
        return out
    zoos = store_zoos.list_zoos()
    zoo_info = {}
    for z in zoos.itertuples():
        cfg = decoded(z.config, {})
        reg = cfg.get("reg", "none")
        zoo_info[int(z.id)] = {"zoo": str(int(z.id)), "dataset": str(z.dataset),
                               "widths": widths_label(cfg.get("widths", [])),
                               "reg": "none" if reg in (None, "none") else f"{reg.upper()} {cfg.get('reg_strength', 0):g}"}
    trees = store_trees.list_trees()
    tree_info = {}
    for t in trees.itertuples():
        cfg, leaves = decoded(t.config, {}), decoded(t.leaves, [])
        tree_info[int(t.id)] = {"method": str(t.method), "leaves": str(len(leaves)),
                                "lam": f"{float(cfg['lam']):g}" if cfg.get("lam") is not None else "",
                                "pairing": pairing_text(cfg["pairing"]) if "pairing" in cfg else "",
                                "seed": str(cfg["seed"]) if cfg.get("seed") is not None else ""}
    leaf_zoo = members.loc[members["zoo_id"].notna() & (members["method"] != "zoo")].groupby("tree_id")["zoo_id"]
    tree_zoo = {int(t): (int(z.iloc[0]) if z.nunique() == 1 else None) for t, z in leaf_zoo}
    rows = []
    for m, t, z in zip(out["method"], out["tree_id"], out["zoo_id"], strict=True):
        info = {}
        if m != "zoo" and not pd.isna(t):
            info.update(tree_info.get(int(t), {}))
            zid = z if not pd.isna(z) else tree_zoo.get(int(t))
            info.update(zoo_info.get(int(zid), {}) if zid is not None and not pd.isna(zid) else
                        {k: "mixed" for k in ZOO_SETTINGS})
        elif not pd.isna(z):
            info.update(zoo_info.get(int(z), {}))
        rows.append(info)
    for name in names:
        out[name] = [r.get(name, "") for r in rows]
    return out


def stat_members(members: pd.DataFrame, split=()) -> pd.DataFrame:
    """Members as every statistic groups them: the level-0 nodes of every tree become one LEAVES group
    ("unmerged leaves", each model once), since the leaves of a hierarchical tree and of a MergeMany over
    the same models are one set of unmerged models; every other (group, model) pair appears once.

    split: setting names (SETTINGS) whose values are appended to the group label, so series are split and
    coloured by them; leaves are split only by zoo settings (tree settings say nothing about them)."""
    if members.empty:
        return members.copy()
    split = [s for s in split if s in SETTINGS]
    if split:
        if not set(split) <= set(members.columns):
            members = member_settings(members)
        leaves = (members["method"] != "zoo") & (members["level"] == 0)
        suffix = []
        for is_leaf, row in zip(leaves, members[split].itertuples(index=False), strict=True):
            parts = [_setting_text(n, v) for n, v in zip(split, row, strict=True)
                     if v != "" and not (is_leaf and n in TREE_SETTINGS) and not (n == "method")]
            suffix.append("".join(f" · {p}" for p in parts))
        members = members.assign(_suffix=suffix)
    out = fold_leaves(members)
    if split:
        out["group"] = out["group"] + out["_suffix"]
        out = out.drop(columns=["_suffix"])
    out = out.drop_duplicates(["model_id", "group", "level"])
    return out.reset_index(drop=True)


def eval_keys(members: pd.DataFrame) -> pd.DataFrame:
    """Evaluation configs the members have results for: eval_key, n_models, n_rows (most models first)."""
    if members.empty:
        return pd.DataFrame(columns=["eval_key", "n_models", "n_rows"])
    return store_reads.eval_key_counts(sorted(set(members["model_id"].astype(int))))



def eval_coverage(members: pd.DataFrame) -> pd.DataFrame:
    """Which evaluation configs each selected tree / zoo has results in: source ("tree 3" / "zoo 2"),
    eval_key, n_models (of that source's members, carried nodes excluded)."""
    if members.empty:
        return pd.DataFrame(columns=["source", "eval_key", "n_models"])
    source = [f"zoo {int(z)}" if m == "zoo" else f"tree {int(t)}"
              for m, t, z in zip(members["method"], members["tree_id"], members["zoo_id"], strict=True)]
    return store_reads.eval_key_coverage(members.assign(source=source))


SUMMARY_KEYS = ["group", "method", "zoo_kind", "level"]


def level_summary(members: pd.DataFrame, eval_key: str, metrics=None) -> pd.DataFrame:
    """comparison_table computed in DuckDB: TABLE_COLUMNS per (group, method, zoo_kind, level, metric, param)."""
    if members.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    labels = members.assign(zoo_kind=members["zoo_kind"].fillna("").astype(str))
    out = store_reads.aggregate_evaluations(labels, SUMMARY_KEYS, eval_key,
                                            metrics=None if metrics is None else list(metrics))
    if out.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    out["zoo_kind"] = out["zoo_kind"].replace("", None)
    out["level"] = out["level"].astype(int)
    out["n"] = out["n"].astype(int)
    out["param"] = out["param"].astype(float)
    return out.sort_values(["group", "level", "metric", "param"]).reset_index(drop=True)[TABLE_COLUMNS]


def level_points(members: pd.DataFrame, eval_key: str, metrics=None) -> pd.DataFrame:
    """Per-model values (model_id, tree_id, method, level, group, metric, param, value) for one config."""
    keys = ["tree_id", "method", "level", "group"]
    if members.empty:
        return pd.DataFrame(columns=["model_id", *keys, "metric", "param", "value"])
    out = store_reads.member_evaluations(members.assign(tree_id=members["tree_id"].astype("Int64")), keys,
                                         eval_key, metrics=None if metrics is None else list(metrics))
    out["level"] = out["level"].astype(int)
    out["param"] = out["param"].astype(float)
    return out


def selection_summary(tree_ids=(), zoo_ids=(), eval_key: str = "", split=(), metrics=None) -> pd.DataFrame:
    """What Compare, its Table tab and `export --table comparison|wide` show for a selection: level_summary
    of stat_members (leaves as one group, carried nodes out, n = distinct models), split by `split`."""
    members = level_members(tree_ids=list(tree_ids), zoo_ids=list(zoo_ids))
    return level_summary(stat_members(members, split), eval_key, metrics)


def selection_points(tree_ids=(), eval_key: str = "", metrics=None, split=()) -> pd.DataFrame:
    """Per-model values of the selected trees' nodes, grouped as selection_summary groups them (the dots of
    Compare's level charts and the thin per-model lines of its curve charts)."""
    members = stat_members(level_members(tree_ids=list(tree_ids)), split)
    return level_points(members, eval_key, None if metrics is None else list(metrics))


def level_metrics(*, tree_ids=None, zoo_ids=None, eval_key: str | None = None) -> pd.DataFrame:
    """Every evaluation row of the chosen trees' nodes and zoos' models, tagged with level and group.

    Columns: LEVEL_COLUMNS. A leaf shared by two trees appears once per tree (it is level 0 of both).
    Zoo models appear with method "zoo" and group "L1 zoo" / "L2 zoo" / "unmerged zoo" as references.
    With eval_key=None every evaluation config is returned; filter on `eval_key` before aggregating.
    Charts and tables should prefer level_summary / level_points, which aggregate in DuckDB.
    """
    members = level_members(tree_ids=tree_ids, zoo_ids=zoo_ids)
    if members.empty:
        return pd.DataFrame(columns=LEVEL_COLUMNS)
    ev = store_evals.evaluations(model_ids=sorted(set(members["model_id"].astype(int))), eval_key=eval_key)
    if ev.empty:
        return pd.DataFrame(columns=LEVEL_COLUMNS)
    out = members.merge(ev[["model_id", "eval_key", "metric", "param", "value"]], on="model_id", how="inner")
    out["tree_id"] = out["tree_id"].astype("Int64")
    return out[LEVEL_COLUMNS].reset_index(drop=True)


def eval_key_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Which evaluation configs a level_metrics frame holds, most models first (to pick one per chart)."""
    if df.empty:
        return pd.DataFrame(columns=["eval_key", "n_models", "n_rows"])
    out = df.groupby("eval_key").agg(n_models=("model_id", "nunique"), n_rows=("value", "size")).reset_index()
    return out.sort_values(["n_models", "n_rows"], ascending=False).reset_index(drop=True)

