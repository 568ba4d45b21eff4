"""Whether adversarials made for one model fool another.

The source model's adversarials are [0, 1] images at its input size; the
target sees each resized to its own input (bilinear, antialiased, as an
ensemble feeds its members), so models of different sizes (EfficientNet-Lite
0/1/2) are compared on the same field of view.
"""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp

from jaxaudit.data import pixels
from jaxaudit.models.classifier import Classifier, Params


def predict_step(target: Classifier) -> Callable[[Params, dict], dict]:
  """A pure executor step: `(params, {"image": [B, S, S, 3]}) ->
  {"prediction": int32 [B]}`, the target's top-1 class for images of any
  square size S in [0, 1]."""

  def step(params: Params, batch: dict) -> dict:
    images = pixels.resize_square(batch["image"].astype(jnp.float32),
                                  target.input_size)
    logits = target.logits(params, images)
    return {"prediction": jnp.argmax(logits, -1).astype(jnp.int32)}

  return step
