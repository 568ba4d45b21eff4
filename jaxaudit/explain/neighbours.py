"""Example-based explanations: the nearest examples in the model's feature space.

For an image the model calls class c, its nearest neighbours among reference
examples of class c show what the model has learned c looks like; its nearest
neighbours of the true class show what it should have matched. Similarity is the
cosine of penultimate-layer features. On a mesh the references stay sharded
(`nearest_in_class_sharded`): a job never gathers every example's features.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec as P


class Neighbours(NamedTuple):
  """Attributes:
    index: int32 [B, k] rows of the reference set, best first; -1 where the
      class has fewer than k other members.
    similarity: float32 [B, k] cosine similarity (-inf where index is -1).
  """
  index: jax.Array
  similarity: jax.Array


def _unit(x: jax.Array) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def nearest_in_class(query_features: jax.Array, query_classes: jax.Array,
                     query_ids: jax.Array, reference_features: jax.Array,
                     reference_classes: jax.Array, reference_ids: jax.Array,
                     k: int) -> Neighbours:
  """The k most similar reference examples of each query's class, self excluded.

  Args:
    query_features: float [B, D].
    query_classes: int [B] class each query's neighbours must belong to.
    query_ids: int [B] global ids (a reference with the same id is skipped).
    reference_features: float [N, D].
    reference_classes: int [N].
    reference_ids: int [N].
    k: neighbours per query (<= N).

  Returns:
    `Neighbours`.
  """
  similarity = _unit(query_features) @ _unit(reference_features).T
  allowed = ((reference_classes[None, :] == query_classes[:, None])
             & (reference_ids[None, :] != query_ids[:, None]))
  similarity = jnp.where(allowed, similarity, -jnp.inf)
  values, index = jax.lax.top_k(similarity, k)
  valid = jnp.isfinite(values)
  return Neighbours(jnp.where(valid, index, -1).astype(jnp.int32), values)


def nearest_in_class_sharded(query_features: jax.Array,
                             query_classes: jax.Array, query_ids: jax.Array,
                             reference_features: jax.Array,
                             reference_classes: jax.Array,
                             reference_ids: jax.Array, k: int, mesh: Mesh,
                             axis: str) -> tuple[jax.Array, jax.Array]:
  """`nearest_in_class` with queries and references both sharded over
  `axis`: no device holds more than its own references.

  Each device gathers the batch's queries (small), ranks its own references
  against them, and the per-device top k are merged into the global top k.
  References lie in global id order across devices, so ties go to the lowest
  id, as in `nearest_in_class`.

  Args:
    query_features / query_classes / query_ids: [B, D] / [B] / [B], sharded.
    reference_features / reference_classes / reference_ids: [R, D] / [R] /
      [R], sharded (padding rows: a class no query has, id -1).
    k: neighbours per query (<= the references, R).
    mesh: the device mesh.
    axis: its data axis.

  Returns:
    (ids int32 [B, k] of the neighbours, -1 where fewer; similarities
    float32 [B, k], -inf there).
  """

  def per_device(q, qc, qid, r, rc, rid):
    gather = lambda x: jax.lax.all_gather(x, axis, tiled=True)
    own = min(k, r.shape[0])  # A device may hold fewer than k references.
    found = nearest_in_class(gather(q), gather(qc), gather(qid), r, rc, rid,
                             own)
    ids = jnp.where(found.index >= 0, rid[jnp.maximum(found.index, 0)], -1)
    all_values = jax.lax.all_gather(found.similarity, axis, axis=1)
    all_ids = jax.lax.all_gather(ids, axis, axis=1)
    batch = all_values.shape[0]
    values, best = jax.lax.top_k(all_values.reshape(batch, -1), k)
    ids = jnp.take_along_axis(all_ids.reshape(batch, -1), best, axis=1)
    ids = jnp.where(jnp.isfinite(values), ids, -1).astype(jnp.int32)
    rows = q.shape[0]
    start = jax.lax.axis_index(axis) * rows
    return (jax.lax.dynamic_slice_in_dim(ids, start, rows),
            jax.lax.dynamic_slice_in_dim(values, start, rows))

  spec = P(axis)
  return jax.shard_map(per_device, mesh=mesh, in_specs=(spec,) * 6,
                       out_specs=(spec, spec), check_vma=False)(
                           query_features, query_classes, query_ids,
                           reference_features, reference_classes,
                           reference_ids)
