"""A small ReLU network on 8x8 images: fast to compile, piecewise linear like the
real models, with independent examples."""

import jax


def make_logits_fn(seed: int = 0, size: int = 8, classes: int = 5):
  k1, k2 = jax.random.split(jax.random.key(seed))
  w1 = jax.random.normal(k1, (size * size * 3, 32)) / size
  w2 = jax.random.normal(k2, (32, classes)) / 4

  def logits_fn(images):
    hidden = jax.nn.relu(images.reshape(images.shape[0], -1) @ w1 - 0.2)
    return hidden @ w2

  return logits_fn


def images(seed: int = 1, batch: int = 4, size: int = 8):
  return jax.random.uniform(jax.random.key(seed), (batch, size, size, 3))
