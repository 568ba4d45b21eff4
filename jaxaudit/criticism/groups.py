"""MMD-critic over many groups at once: padded, bucketed by size, vmapped.

Groups (classes, superclasses, ...) of similar padded size share one compiled
program: their features are stacked into [G, n, d] with a row mask, the kernel
row sums of all their tiles are computed in one sharded pass, and the greedy
prototype and criticism searches run `vmap`ped over the groups. Bucket sizes are
powers of two up to `block_size`, then multiples of it, so a job compiles a few
shapes; a bucket is cut into chunks of at most `max_chunk_bytes` of features.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
import numpy as np

from jaxaudit.criticism import criticisms as criticisms_lib
from jaxaudit.criticism import kernel
from jaxaudit.criticism import prototypes as prototypes_lib


@dataclasses.dataclass
class GroupSelection:
  """MMD-critic results of every group.

  Attributes:
    prototypes: per group, int [<= m] row indices into `features`, in
      selection order.
    criticisms: per group, int [<= c] row indices, in selection order.
    witness: float [N] each row's witness value in its group (NaN outside).
    mmd2: float [G] MMD^2 between each group and its prototypes.
    gamma: float [G] the kernel width used.
    sizes: int [G] points per group.
  """
  prototypes: list[np.ndarray]
  criticisms: list[np.ndarray]
  witness: np.ndarray
  mmd2: np.ndarray
  gamma: np.ndarray
  sizes: np.ndarray


def compute_dtype(features: np.ndarray) -> np.dtype:
  """float64 for float64 input under `jax.enable_x64(True)`, else float32."""
  if jax.config.jax_enable_x64 and np.asarray(features).dtype == np.float64:
    return np.dtype(np.float64)
  return np.dtype(np.float32)


def padded_size(n: int, block_size: int) -> tuple[int, int]:
  """(padded group size, tile side) for a group of n points."""
  if n <= block_size:
    size = max(8, 1 << max(0, n - 1).bit_length())
    return size, size
  return math.ceil(n / block_size) * block_size, block_size


@functools.partial(jax.jit, static_argnames=("num_prototypes", "num_criticisms",
                                             "regularizer"))
def _select_chunk(x, mask, row_sums, gamma, given, *, num_prototypes: int,
                  num_criticisms: int, regularizer: str):
  """Both greedy searches on [G, n, d] groups; `given` [G, m] or [G, 0]."""

  def one(x, mask, row_sums, gamma, given):
    if num_prototypes:
      protos = prototypes_lib.select(x, mask, row_sums, gamma,
                                     num_prototypes).chosen
    else:
      protos = given
    sums = criticisms_lib.prototype_sums(x, mask, protos, gamma)
    count = (protos >= 0).sum()
    witness = criticisms_lib.witness(row_sums, sums, mask, count)
    crits = criticisms_lib.select(x, mask, witness, protos, gamma,
                                  num_criticisms, regularizer).chosen
    mmd2 = prototypes_lib.mmd2(row_sums, mask, sums, protos)
    return protos, crits, witness, mmd2

  return jax.vmap(one)(x, mask, row_sums, gamma, given)


def _chunks(sizes: np.ndarray, dim: int, itemsize: int, block_size: int,
            max_chunk_bytes: int):
  """Yields (group indices, padded size, tile side) of each chunk."""
  buckets: dict[int, list[int]] = {}
  for g in np.flatnonzero(sizes > 0):
    buckets.setdefault(padded_size(int(sizes[g]), block_size)[0], []).append(g)
  for n_pad, members in sorted(buckets.items()):
    per_chunk = max(1, max_chunk_bytes // (n_pad * dim * itemsize))
    for k in range(0, len(members), per_chunk):
      yield members[k:k + per_chunk], n_pad, padded_size(n_pad, block_size)[1]


def select_groups(features: np.ndarray, groups: np.ndarray,
                  num_prototypes: int, num_criticisms: int,
                  gamma: float | None = None, regularizer: str = "logdet", *,
                  prototypes: list[np.ndarray] | None = None,
                  mesh: Mesh | None = None, block_size: int = 512,
                  max_chunk_bytes: int = 1 << 30) -> GroupSelection:
  """MMD-critic prototypes and criticisms of every group.

  Args:
    features: [N, D] features of all points.
    groups: int [N] group index of each row in 0..G-1, -1 = in no group.
    num_prototypes: m per group (fewer where a group is smaller).
    num_criticisms: c per group (fewer where too few points are left).
    gamma: kernel width; None = `kernel.median_gamma` of each group.
    regularizer: "logdet" or "none" (see `criticisms.select`).
    prototypes: per group, given prototype row indices instead of the greedy
      search (then `num_prototypes` is ignored).
    mesh: devices for the sharded row sums (default: all).
    block_size: kernel tile side.
    max_chunk_bytes: features of the groups vmapped together.

  Returns:
    `GroupSelection`; rows within a group keep their order in `features`, so ties
    go to the lowest row index.
  """
  features = np.asarray(features)
  groups = np.asarray(groups)
  if features.ndim != 2 or groups.shape != features.shape[:1]:
    raise ValueError(f"features must be [N, D] and groups [N], got "
                     f"{features.shape} and {groups.shape}")
  if regularizer not in criticisms_lib.REGULARIZERS:
    raise ValueError(f"regularizer must be one of "
                     f"{criticisms_lib.REGULARIZERS}, got '{regularizer}'")
  dtype = compute_dtype(features)
  num_groups = int(groups.max()) + 1 if len(groups) else 0
  members = [np.flatnonzero(groups == g) for g in range(num_groups)]
  sizes = np.asarray([len(m) for m in members], np.int64)
  gammas = np.asarray(
      [gamma if gamma is not None else kernel.median_gamma(features[m])
       if len(m) else np.nan for m in members], np.float64)
  given_m = (max([len(p) for p in prototypes] + [0])
             if prototypes is not None else 0)
  out = GroupSelection([np.zeros(0, np.int64)] * num_groups,
                  [np.zeros(0, np.int64)] * num_groups,
                  np.full(len(features), np.nan), np.full(num_groups, np.nan),
                  gammas, sizes)
  for chunk, n_pad, tile in _chunks(sizes, features.shape[1], dtype.itemsize,
                                    block_size, max_chunk_bytes):
    x = np.zeros((len(chunk), n_pad, features.shape[1]), dtype)
    mask = np.zeros((len(chunk), n_pad), bool)
    given = np.full((len(chunk), given_m), -1)
    for k, g in enumerate(chunk):
      rows = features[members[g]].astype(np.float64)
      x[k, :len(rows)] = rows - rows.mean(0)
      mask[k, :len(rows)] = True
      if prototypes is not None:
        local = np.searchsorted(members[g], prototypes[g])
        given[k, :len(local)] = local
    row_sums = kernel.kernel_row_sums(
        jnp.asarray(x), jnp.asarray(mask), jnp.asarray(gammas[chunk], dtype),
        block_size=tile, mesh=mesh)
    protos, crits, witness, mmd2 = jax.device_get(_select_chunk(
        x, mask, row_sums, jnp.asarray(gammas[chunk], dtype),
        given.astype(np.int32),
        num_prototypes=0 if prototypes is not None else num_prototypes,
        num_criticisms=num_criticisms, regularizer=regularizer))
    for k, g in enumerate(chunk):
      rows = members[g]
      out.prototypes[g] = rows[protos[k][protos[k] >= 0]]
      out.criticisms[g] = rows[crits[k][crits[k] >= 0]]
      out.witness[rows] = witness[k, :len(rows)]
      out.mmd2[g] = mmd2[k]
  return out
