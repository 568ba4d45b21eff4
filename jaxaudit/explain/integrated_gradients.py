"""Integrated gradients (Sundararajan et al., 2017) with memory flat in the steps.

The path integral from a baseline b to the input x,
  IG_i(x) = (x_i - b_i) * int_0^1 d f(b + a (x - b)) / d x_i da,
is approximated by a quadrature rule. The steps are cut into chunks of `chunk`
points; a `lax.scan` over the chunks evaluates one chunk's gradients as a batch of
B * chunk images and adds their weighted sum to a running [B, H, W, 3] total, so
memory depends on `chunk`, not on `steps` (Captum needs `internal_batch_size` for
the same). f is the target-class logit (see `attribution.py`).

On ReLU/ReLU6 networks the logit along the path from a black image often jumps
within the first few percent of the path, so evenly spread nodes converge slowly
(EfficientNet-Lite0: ~5-50% completeness error at 32 Gauss-Legendre steps).
`probes > 0` spends cheap forward passes to find where the logit moves and
places the gradient evaluations there (`adaptive_nodes`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from jaxaudit import progress
from jaxaudit.errors import ParameterError
from jaxaudit.explain import baselines as baselines_lib
from jaxaudit.explain import quadrature
from jaxaudit.explain.attribution import (Attribution, AttributionFn, LogitsFn,
                                          target_gradients, target_logits)


class IGOutput(NamedTuple):
  """Integrated gradients of a batch.

  Attributes:
    attributions: float32 [B, H, W, 3].
    logit_delta: f(x) - f(baseline), float32 [B].
    completeness_error: |sum(attributions) - logit_delta| / |logit_delta|, [B].
  """
  attributions: jax.Array
  logit_delta: jax.Array
  completeness_error: jax.Array


def _chunks(values: jax.Array, chunk: int) -> jax.Array:
  """[B, S] -> [ceil(S / chunk), B, chunk], zero-padded."""
  steps = values.shape[1]
  chunk = min(chunk, steps)
  padded = -(-steps // chunk) * chunk
  values = jnp.pad(values, ((0, 0), (0, padded - steps)))
  return values.reshape(values.shape[0], -1, chunk).transpose(1, 0, 2)


def _path_logits(logits_fn: LogitsFn, images: jax.Array, baselines: jax.Array,
                 targets: jax.Array, alphas: jax.Array, chunk: int) -> jax.Array:
  """Target logit at `baselines + alphas * (images - baselines)`.

  Args:
    alphas: [B, S] points on each example's path.

  Returns:
    float32 [B, S]; a `lax.scan` over chunks of `chunk` points.
  """
  batch, steps = alphas.shape
  diff = images - baselines

  def step(_, chunk_alphas):
    size = chunk_alphas.shape[1]
    path = (baselines[:, None]
            + chunk_alphas[:, :, None, None, None] * diff[:, None])
    values = target_logits(logits_fn, path.reshape((-1,) + images.shape[1:]),
                           jnp.repeat(targets, size))
    return None, values.reshape(batch, size)

  _, values = jax.lax.scan(step, None, _chunks(alphas, chunk))
  return values.transpose(1, 0, 2).reshape(batch, -1)[:, :steps]


def adaptive_nodes(path_values: jax.Array, steps: int,
                   uniform_share: float = 0.1) -> tuple[jax.Array, jax.Array]:
  """A midpoint rule on cells of equal change of the target logit.

  A ReLU/ReLU6 network's logit often jumps within a few percent of the path
  (e.g. as a black image starts to show), and evenly placed nodes miss it. With
  the logit probed at M + 1 even points, [0, 1] is cut into `steps` cells that
  each hold an equal share of the total |change| (mixed with `uniform_share` of
  an even spread, interpolated linearly between probes); each cell contributes
  its width times the integrand at its centre. Weights sum to 1 exactly.

  Args:
    path_values: float [B, M + 1] logits at alpha = j / M.
    steps: number of cells (gradient evaluations).
    uniform_share: fraction of the cells spread evenly.

  Returns:
    Per-example alphas [B, steps] and weights [B, steps].
  """
  probes = path_values.shape[1] - 1
  change = jnp.abs(jnp.diff(path_values, axis=1))
  total = jnp.maximum(change.sum(1, keepdims=True), 1e-12)
  density = (1 - uniform_share) * change / total + uniform_share / probes
  cumulative = jnp.concatenate(
      [jnp.zeros_like(density[:, :1]), jnp.cumsum(density, 1)], 1)
  cumulative = cumulative / cumulative[:, -1:]
  grid = jnp.linspace(0.0, 1.0, probes + 1)
  shares = jnp.linspace(0.0, 1.0, steps + 1)
  edges = jax.vmap(lambda cum: jnp.interp(shares, cum, grid))(cumulative)
  return (edges[:, 1:] + edges[:, :-1]) / 2, jnp.diff(edges, axis=1)


def integrated_gradients(logits_fn: LogitsFn, images: jax.Array,
                         baselines: jax.Array, targets: jax.Array, *,
                         steps: int, chunk: int, rule: str = "gausslegendre",
                         probes: int = 0) -> IGOutput:
  """Integrated gradients of the target logit, `chunk` path points at a time.

  Args:
    logits_fn: images [N, H, W, 3] -> logits [N, K]; examples independent.
    images: float32 [B, H, W, 3].
    baselines: float32 [B, H, W, 3].
    targets: int [B] classes whose logit is explained.
    steps: number of quadrature nodes (gradient evaluations).
    chunk: nodes evaluated together (the gradient batch is B * chunk).
    rule: a `quadrature.RULES` name.
    probes: M > 0 first evaluates the logit at M + 1 even points (forward
      passes only) and uses `adaptive_nodes` instead of `rule`; 0 uses the
      rule's nodes as they are (as Captum does).

  Returns:
    `IGOutput`.
  """
  if chunk < 1:
    raise ParameterError("ig.chunk", f"must be >= 1, got {chunk}")
  rule_alphas, rule_weights = (jnp.asarray(v, jnp.float32) for v in
                               quadrature.nodes_and_weights(rule, steps))
  batch = images.shape[0]
  if probes > 0:
    grid = jnp.broadcast_to(jnp.linspace(0.0, 1.0, probes + 1),
                            (batch, probes + 1))
    values = _path_logits(logits_fn, images, baselines, targets, grid, chunk)
    alphas, weights = adaptive_nodes(values, steps)
    delta = values[:, -1] - values[:, 0]
  else:
    alphas = jnp.broadcast_to(rule_alphas, (batch, steps))
    weights = jnp.broadcast_to(rule_weights, (batch, steps))
    ends = target_logits(logits_fn, jnp.concatenate([images, baselines]),
                         jnp.concatenate([targets, targets]))
    delta = ends[:batch] - ends[batch:]
  diff = images - baselines

  chunks = _chunks(alphas, chunk)

  def step(total, chunk_nodes):
    k, chunk_alphas, chunk_weights = chunk_nodes  # [B, C] each.
    progress.tick("integrated gradients", k, chunks.shape[0])
    size = chunk_alphas.shape[1]
    # [B, C, H, W, 3], batch-major so a batch-sharded layout stays local.
    path = (baselines[:, None]
            + chunk_alphas[:, :, None, None, None] * diff[:, None])
    grads = target_gradients(logits_fn, path.reshape((-1,) + images.shape[1:]),
                             jnp.repeat(targets, size))
    grads = grads.reshape((batch, size) + images.shape[1:])
    return total + jnp.einsum("bchwk,bc->bhwk", grads, chunk_weights), None

  total, _ = jax.lax.scan(step, jnp.zeros_like(images),
                          (jnp.arange(chunks.shape[0]), chunks,
                           _chunks(weights, chunk)))
  attributions = diff * total
  gap = jnp.abs(attributions.sum((1, 2, 3)) - delta)
  error = gap / jnp.maximum(jnp.abs(delta), 1e-12)
  return IGOutput(attributions, delta, error)


def from_config(config: ml_collections.ConfigDict) -> AttributionFn:
  """The method as `config.explain` sets it up (`config.ig.*`)."""
  ig = config.ig
  quadrature.nodes_and_weights(ig.method, ig.steps)  # Fails early on bad input.
  if ig.baseline not in baselines_lib.KINDS:
    raise ParameterError("ig.baseline", f"unknown '{ig.baseline}'; valid: "
                         + ", ".join(baselines_lib.KINDS))

  def attribute(logits_fn, images, targets, keys):
    base = baselines_lib.make_baseline(ig.baseline, images, keys,
                                       config.blur_sigma)
    out = integrated_gradients(logits_fn, images, base, targets,
                               steps=ig.steps, chunk=ig.chunk, rule=ig.method,
                               probes=ig.probes)
    return Attribution(out.attributions,
                       {"completeness_error": out.completeness_error,
                        "logit_delta": out.logit_delta})

  return attribute
