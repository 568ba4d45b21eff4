"""The model's predictions and features on every example, computed once per job.

Several stages need them (evaluation, mistakes, attacks, criticism); the first one
to ask runs the sharded forward pass and later ones reuse it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit import sharding
from jaxaudit.stages.base import StageContext

_CACHE_KEY = "forward"
NO_FEATURES = ("the model gives no features (return (logits, features) from "
               "apply_fn, or give a features_fn)")


def unit_images(batch_images: jax.Array) -> jax.Array:
  """uint8 [B, H, W, 3] -> float32 pixels in [0, 1]."""
  return batch_images.astype(jnp.float32) / 255.0


def forward(ctx: StageContext) -> dict[str, np.ndarray]:
  """Logits, top-5 and features for every example of every process.

  Returns:
    Arrays sorted by global id: `id` [N], `label` [N], `logits` [N, K],
    `probs` float32 [N, K], `prediction` [N], `top5` int [N, 5], `top5_probs`
    [N, 5], and `features` [N, D] where the model has features.
  """
  if _CACHE_KEY in ctx.cache:
    return ctx.cache[_CACHE_KEY]
  model = ctx.model

  def step(params, batch):
    logits, features = model.logits_and_features(params,
                                                 unit_images(batch["image"]))
    out = {"logits": logits}
    if features is not None:
      out["features"] = features
    return out

  local = ctx.map_batches("forward", step, ctx.params,
                          {"image": ctx.data.images})
  arrays = sharding.gather_to_all(
      dict(local, label=ctx.data.labels), ctx.data.ids)
  logits = arrays["logits"].astype(np.float64)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  top5 = np.argsort(-logits, axis=-1, kind="stable")[:, :5]
  arrays.update(probs=probs.astype(np.float32), prediction=top5[:, 0],
                top5=top5,
                top5_probs=np.take_along_axis(probs, top5, -1).astype(np.float32))
  ctx.cache[_CACHE_KEY] = arrays
  return arrays
