"""Example-based explanations: the nearest examples in the model's feature space.

For an image the model calls class c, its nearest neighbours among reference
examples of class c show what the model has learned c looks like; its nearest
neighbours of the true class show what it should have matched. Similarity is the
cosine of penultimate-layer features.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


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
