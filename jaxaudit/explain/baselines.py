"""Reference images for integrated gradients and the faithfulness curves.

A baseline is an image that carries "no evidence": black (all zeros), uniform
noise, or the input blurred with a Gaussian so that edges and texture vanish but
colours stay (Sturmfels et al., "Visualizing the Impact of Feature Attribution
Baselines", Distill 2020).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit.errors import ParameterError

KINDS = ("black", "uniform", "blurred")


def _blur_matrix(size: int, sigma: float) -> np.ndarray:
  """[size, size] matrix that blurs a 1-D signal, borders reflected."""
  radius = min(int(math.ceil(3 * sigma)), size - 1)
  offsets = np.arange(-radius, radius + 1)
  kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
  kernel /= kernel.sum()
  matrix = np.zeros((size, size))
  for i in range(size):
    source = i + offsets
    source = np.where(source < 0, -source, source)
    source = np.where(source >= size, 2 * (size - 1) - source, source)
    np.add.at(matrix[i], source, kernel)
  return matrix


def gaussian_blur(images: jax.Array, sigma: float) -> jax.Array:
  """Separable Gaussian blur with reflected borders, as two small matmuls.

  Args:
    images: float [B, H, W, C].
    sigma: standard deviation in pixels (0 returns the input).

  Returns:
    Blurred images [B, H, W, C].
  """
  if sigma <= 0:
    return images
  rows = jnp.asarray(_blur_matrix(images.shape[1], sigma), images.dtype)
  cols = jnp.asarray(_blur_matrix(images.shape[2], sigma), images.dtype)
  return jnp.einsum("ih,bhwc,jw->bijc", rows, images, cols)


def make_baseline(kind: str, images: jax.Array, keys: jax.Array,
                  blur_sigma: float, parameter: str = "ig.baseline"
                  ) -> jax.Array:
  """A baseline image per example.

  Args:
    kind: one of `KINDS`.
    images: float32 [B, H, W, 3] in [0, 1].
    keys: per-example PRNG keys [B] (used by "uniform").
    blur_sigma: Gaussian sigma as a fraction of the image height ("blurred").
    parameter: the parameter named in errors.

  Returns:
    Baselines float32 [B, H, W, 3].
  """
  if kind == "black":
    return jnp.zeros_like(images)
  if kind == "uniform":
    return jax.vmap(lambda k: jax.random.uniform(k, images.shape[1:],
                                                 images.dtype))(keys)
  if kind == "blurred":
    return gaussian_blur(images, blur_sigma * images.shape[1])
  raise ParameterError(parameter, f"unknown baseline '{kind}'; valid: "
                       + ", ".join(KINDS))
