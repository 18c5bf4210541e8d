"""Permutations of hidden units, and which weight axes each one moves.

A ReLU MLP computes the same function after any reordering of a hidden layer's units, provided the
rows of that layer (weight and bias) and the columns of the next layer's weight move together. A
`PermutationSpec` records these couplings so matching and merging work on any state dict, not just
our MLP.

Convention (the same as Ainsworth et al.'s Git Re-Basin code): applying `perm` gathers along each
axis, `new[..., i, ...] = old[..., perm[p][i], ...]`, so `perm[p][i]` names the *old* unit that lands
at position `i`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

Permutation = dict[str, Tensor]  # perm name -> LongTensor [n], a permutation of 0..n-1
Params = dict[str, Tensor]


@dataclass(frozen=True)
class PermutationSpec:
    """perm_to_axes: perm name -> [(param key, axis)]; axes_to_perm: param key -> perm name | None per axis."""

    perm_to_axes: dict[str, list[tuple[str, int]]]
    axes_to_perm: dict[str, tuple[str | None, ...]]

    @classmethod
    def from_axes(cls, axes_to_perm: Mapping[str, tuple[str | None, ...]]) -> PermutationSpec:
        perm_to_axes: dict[str, list[tuple[str, int]]] = {}
        for key, axis_perms in axes_to_perm.items():
            for axis, name in enumerate(axis_perms):
                if name is not None:
                    perm_to_axes.setdefault(name, []).append((key, axis))
        return cls(perm_to_axes=perm_to_axes, axes_to_perm=dict(axes_to_perm))

    @property
    def perm_names(self) -> list[str]:
        return list(self.perm_to_axes)


def mlp_permutation_spec(num_hidden: int) -> PermutationSpec:
    """Spec for backend.models.MLP with `num_hidden` hidden layers (num_hidden + 1 linear layers).

    P_i reorders hidden layer i: rows of layers.i.{weight,bias} and columns of layers.{i+1}.weight.
    The input normalisation buffers and the classifier's rows are never permuted.
    """
    if not isinstance(num_hidden, int) or num_hidden < 1:
        raise ValueError(f"an MLP needs at least one hidden layer to permute, got num_hidden={num_hidden!r}")
    axes: dict[str, tuple[str | None, ...]] = {"mean": (None,), "std": (None,)}
    for i in range(num_hidden + 1):
        p_in = f"P_{i - 1}" if i > 0 else None
        p_out = f"P_{i}" if i < num_hidden else None
        axes[f"layers.{i}.weight"] = (p_out, p_in)  # [out_i, in_i]
        axes[f"layers.{i}.bias"] = (p_out,)  # [out_i]
    return PermutationSpec.from_axes(axes)


def spec_for_params(params: Mapping[str, Tensor]) -> PermutationSpec:
    """The MLP spec that fits a state dict with keys layers.{i}.weight/bias (+ mean/std)."""
    n_layers = sum(1 for k in params if k.startswith("layers.") and k.endswith(".weight"))
    if n_layers < 2:
        raise ValueError(f"an MLP needs at least two linear layers to permute, found {n_layers}")
    return mlp_permutation_spec(n_layers - 1)


def check_params(spec: PermutationSpec, params: Mapping[str, Tensor]) -> dict[str, int]:
    """Check that params has exactly the spec's keys and consistent sizes; return perm name -> size."""
    missing = [k for k in spec.axes_to_perm if k not in params]
    extra = [k for k in params if k not in spec.axes_to_perm]
    if missing:
        raise ValueError(f"parameters do not fit the permutation spec: missing key(s) {missing}")
    if extra:
        raise ValueError(f"parameters do not fit the permutation spec: unexpected key(s) {extra}")
    for key, axis_perms in spec.axes_to_perm.items():
        if params[key].dim() != len(axis_perms):
            raise ValueError(
                f"parameter '{key}' has {params[key].dim()} dimension(s) but the spec describes {len(axis_perms)}"
            )
    sizes: dict[str, int] = {}
    for name, axes in spec.perm_to_axes.items():
        found = {(key, axis): params[key].shape[axis] for key, axis in axes}
        if len(set(found.values())) != 1:
            raise ValueError(f"permutation '{name}' touches axes of different sizes: {found}")
        sizes[name] = next(iter(found.values()))
    return sizes


def check_permutation(spec: PermutationSpec, perm: Mapping[str, Tensor], sizes: Mapping[str, int]) -> Permutation:
    """Validate perm against the spec and sizes; return it as CPU LongTensors."""
    if set(perm) != set(spec.perm_to_axes):
        raise ValueError(
            f"permutation names {sorted(perm)} do not match the spec's {sorted(spec.perm_to_axes)}"
        )
    checked: Permutation = {}
    for name in spec.perm_to_axes:
        checked[name] = _as_index(name, perm[name], sizes[name])
    return checked


def _as_index(name: str, p: Tensor, n: int | None = None) -> Tensor:
    if not isinstance(p, Tensor) or p.dtype.is_floating_point or p.dtype.is_complex or p.dtype == torch.bool:
        raise ValueError(f"permutation '{name}' must be an integer tensor")
    if p.dim() != 1:
        raise ValueError(f"permutation '{name}' must be 1-D, got shape {tuple(p.shape)}")
    if n is not None and p.numel() != n:
        raise ValueError(f"permutation '{name}' has length {p.numel()} but the layer has {n} units")
    p = p.detach().to("cpu", torch.long)
    if not torch.equal(torch.sort(p).values, torch.arange(p.numel())):
        raise ValueError(f"'{name}' is not a permutation of 0..{p.numel() - 1}")
    return p


def permuted_param(
    spec: PermutationSpec, perm: Permutation, key: str, params: Mapping[str, Tensor], except_axis: int | None = None
) -> Tensor:
    """params[key] with every spec'd axis gathered by its permutation (optionally skipping one axis)."""
    w = params[key]
    for axis, name in enumerate(spec.axes_to_perm[key]):
        if name is not None and axis != except_axis:
            w = torch.index_select(w, axis, perm[name].to(w.device))
    return w


def apply_permutation(spec: PermutationSpec, perm: Mapping[str, Tensor], params: Mapping[str, Tensor]) -> Params:
    """A new state dict with the hidden units of `params` reordered by `perm`; inputs are never mutated."""
    sizes = check_params(spec, params)
    perm = check_permutation(spec, perm, sizes)
    return {k: permuted_param(spec, perm, k, params).clone() for k in params}


def identity_permutation(spec: PermutationSpec, params: Mapping[str, Tensor]) -> Permutation:
    return {name: torch.arange(n) for name, n in check_params(spec, params).items()}


def random_permutation(spec: PermutationSpec, params: Mapping[str, Tensor], seed: int) -> Permutation:
    """Independent uniform permutations per hidden layer, reproducible from `seed`."""
    generator = torch.Generator().manual_seed(int(seed))
    return {name: torch.randperm(n, generator=generator) for name, n in check_params(spec, params).items()}


def invert_permutation(perm: Mapping[str, Tensor]) -> Permutation:
    """inv such that applying perm then inv (in either order) is the identity."""
    inverse: Permutation = {}
    for name, p in perm.items():
        p = _as_index(name, p)
        inv = torch.empty_like(p)
        inv[p] = torch.arange(p.numel())
        inverse[name] = inv
    return inverse


def compose_permutations(p: Mapping[str, Tensor], q: Mapping[str, Tensor]) -> Permutation:
    """r = "q, then p": apply_permutation(spec, r, x) == apply_permutation(spec, p, apply_permutation(spec, q, x)).

    With gather semantics, (p after q)[i] = q[p[i]].
    """
    if set(p) != set(q):
        raise ValueError(f"cannot compose permutations over different layers: {sorted(p)} vs {sorted(q)}")
    composed: Permutation = {}
    for name in p:
        pi, qi = _as_index(name, p[name]), _as_index(name, q[name])
        if pi.numel() != qi.numel():
            raise ValueError(f"cannot compose '{name}': lengths {pi.numel()} and {qi.numel()} differ")
        composed[name] = qi[pi]
    return composed


def is_identity(perm: Mapping[str, Tensor]) -> bool:
    return all(torch.equal(p.cpu(), torch.arange(p.numel())) for p in perm.values())
