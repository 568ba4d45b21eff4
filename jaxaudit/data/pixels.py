"""Pixels as models see them: uint8 [0, 255] stored, float32 [0, 1] computed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def unit_images(images: jax.Array) -> jax.Array:
  """uint8 [B, H, W, 3] -> float32 pixels in [0, 1]; float input unchanged."""
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 255.0
  return images


def resize_square(images: jax.Array, size: int) -> jax.Array:
  """[B, S, S, 3] pixels -> [B, size, size, 3] (bilinear, antialiased; as
  is where S == size): how one model's input is fed to a model of another
  size (an ensemble's members, adversarials transferred between models)."""
  if images.shape[1] == size and images.shape[2] == size:
    return images
  return jax.image.resize(images, images.shape[:1] + (size, size, 3),
                          "bilinear", antialias=True)


def to_uint8(images: np.ndarray) -> np.ndarray:
  """float [..., 3] in [0, 1] -> uint8, rounded."""
  return np.round(np.clip(np.asarray(images), 0.0, 1.0) * 255).astype(np.uint8)
