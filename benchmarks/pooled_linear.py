"""A model that costs almost nothing, so a job's time is its input pipeline's.

`config.model.name = "benchmarks/pooled_linear.py:make"`: 224-pixel images,
8 x 8 average pooling, one dense layer to 1,000 logits (4.7 MFLOP per image,
about a quarter of a millisecond on one core, against several milliseconds to
decode a 224-pixel JPEG). Random weights; the class names come from the data.
`benchmarks/input.py` runs it on TFDS datasets of 5,000 and 50,000 examples.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import ml_collections

import jaxaudit

INPUT_SIZE = 224
NUM_CLASSES = 1000


class PooledLinear(nn.Module):
  """[B, 224, 224, 3] normalised pixels -> logits [B, 1000]."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.avg_pool(x, (8, 8), strides=(8, 8))
    return nn.Dense(NUM_CLASSES)(x.reshape(x.shape[0], -1))


def make(model_config: ml_collections.ConfigDict
         ) -> tuple[jaxaudit.Classifier, dict]:
  """The classifier and its random params (seed 0); `model_config` unused."""
  del model_config
  model = jaxaudit.Classifier.from_linen(
      PooledLinear(), input_size=INPUT_SIZE, name="pooled_linear",
      normalization=jaxaudit.Normalization(mean=0.5, std=0.25))
  return model, model.init_fn(jax.random.key(0))
