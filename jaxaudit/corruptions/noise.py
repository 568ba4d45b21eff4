"""Noise corruptions (ImageNet-C's noise family and speckle noise): each
pixel value drawn anew, from the image's own key.

Every function maps images [B, H, W, 3] float32 in [0, 1], keys [B] and its
severity's scale (`p["c"]`, from `digital.scale_params`) to corrupted
images [B, H, W, 3] in [0, 1]. The draws follow the reference's
distributions (NumPy's normal and Poisson, scikit-image's salt-and-pepper),
not its bits.
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp

Params = Mapping[str, jax.Array]


def _normal(keys: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  return jax.vmap(lambda k: jax.random.normal(k, shape))(keys)


def gaussian_noise(images: jax.Array, keys: jax.Array, p: Params
                   ) -> jax.Array:
  """x + N(0, c^2) per value."""
  return jnp.clip(images + p["c"] * _normal(keys, images.shape[1:]), 0, 1)


def speckle_noise(images: jax.Array, keys: jax.Array, p: Params
                  ) -> jax.Array:
  """x + x N(0, c^2) per value: noise that grows with the intensity."""
  noise = _normal(keys, images.shape[1:])
  return jnp.clip(images + images * p["c"] * noise, 0, 1)


def shot_noise(images: jax.Array, keys: jax.Array, p: Params) -> jax.Array:
  """Poisson(x c) / c per value: photon counting at c photons per unit."""
  counts = jax.vmap(lambda k, x: jax.random.poisson(k, x * p["c"]))(
      keys, images)
  return jnp.clip(counts.astype(jnp.float32) / p["c"], 0, 1)


def impulse_noise(images: jax.Array, keys: jax.Array, p: Params
                  ) -> jax.Array:
  """Salt and pepper: each value replaced with probability c, by 1 or 0
  with equal odds (scikit-image's `random_noise(mode='s&p')`)."""

  def one(key, x):
    flip_key, salt_key = jax.random.split(key)
    flipped = jax.random.uniform(flip_key, x.shape) <= p["c"]
    salted = jax.random.uniform(salt_key, x.shape) <= 0.5
    return jnp.where(flipped, salted.astype(x.dtype), x)

  return jax.vmap(one)(keys, images)
