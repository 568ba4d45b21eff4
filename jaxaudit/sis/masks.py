"""Feature masks for sufficient input subsets: the feature grid, baselines, bands.

A feature is one cell of a square grid over the image: a single pixel (all three
channels together) when `block_size` is 1, as on CIFAR-10, or a `block_size` x
`block_size` block of pixels on large inputs. A mask holds one value per feature,
1 = kept, 0 = replaced by the baseline pixel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit.errors import ParameterError
from jaxaudit.models.classifier import Classifier

BASELINES = ("mean", "black", "gray")


def baseline_pixel(model: Classifier, kind: str) -> np.ndarray:
  """The RGB value that replaces masked pixels.

  Args:
    model: the classifier (its declared normalisation defines "mean").
    kind: "mean" (the pixel the model normalises to zero), "black" or "gray".

  Returns:
    float32 [3] in [0, 1].
  """
  if kind == "black":
    return np.zeros(3, np.float32)
  if kind == "gray":
    return np.full(3, 0.5, np.float32)
  if kind != "mean":
    raise ParameterError("baseline", f"unknown '{kind}'; valid: "
                         + ", ".join(BASELINES))
  return model.normalization.zero_pixel


def default_block_size(image_size: int, grid: int) -> int:
  """The largest block side that divides `image_size` and is at most
  image_size // grid (at least 1): about a `grid` x `grid` feature grid on any
  input size (224 -> 7 for 32, 240 -> 6, 260 -> 5)."""
  limit = max(1, image_size // grid)
  return max(b for b in range(1, limit + 1) if image_size % b == 0)


def resolve_block_size(block_size: int, image_size: int) -> int:
  """`config.sis.block_size` (0 = auto: `default_block_size(image_size, 32)`)
  -> block side."""
  if block_size < 0:
    raise ParameterError("block_size", f"must be >= 0, got {block_size}")
  block = block_size or default_block_size(image_size, 32)
  if image_size % block:
    raise ParameterError("block_size", f"{block} does not divide the image "
                         f"size {image_size}")
  return block


def grid_side(image_size: int, block_size: int) -> int:
  """Features per image side."""
  return image_size // block_size


def expand(mask: jax.Array, block_size: int) -> jax.Array:
  """Feature mask [B, G * G] -> pixel mask [B, G * block, G * block, 1]."""
  side = int(round(mask.shape[-1] ** 0.5))
  grid = mask.reshape(mask.shape[:-1] + (side, side))
  pixels = jnp.repeat(jnp.repeat(grid, block_size, -2), block_size, -1)
  return pixels[..., None]


def apply_mask(images: jax.Array, mask: jax.Array, baseline: jax.Array,
               block_size: int) -> jax.Array:
  """Kept features from `images`, the rest the baseline pixel.

  Args:
    images: float32 [B, H, W, 3] in [0, 1].
    mask: float32 [B, F], F = (H / block_size)^2; 1 = kept.
    baseline: float32 [3].
    block_size: side of a feature in pixels.

  Returns:
    float32 [B, H, W, 3].
  """
  m = expand(mask, block_size)
  return images * m + baseline * (1.0 - m)


def top_ranked(ranks: jax.Array, count: jax.Array | int) -> jax.Array:
  """float32 mask [B, F] keeping the features of rank < count (rank 0 = best)."""
  count = jnp.asarray(count)
  if count.ndim:
    count = count[:, None]
  return (ranks < count).astype(jnp.float32)


def random_ranks(keys: jax.Array, num_features: int) -> jax.Array:
  """A uniformly random ranking per example: keys [B] -> int32 [B, F]."""
  return jax.vmap(lambda k: jax.random.permutation(k, num_features))(
      keys).astype(jnp.int32)


def border_band(side: int, block_size: int, fraction: float) -> np.ndarray:
  """Pixels per feature that lie in the outer band of the image.

  Args:
    side: grid side G.
    block_size: feature side in pixels.
    fraction: band width as a fraction of the image side (rounded to pixels,
      at least one pixel).

  Returns:
    float32 [G * G]: for each feature, how many of its pixels are in the band.
  """
  if not 0.0 < fraction < 0.5:
    raise ParameterError("border_fraction", "must be in (0, 0.5), got "
                      f"{fraction}")
  size = side * block_size
  width = max(1, int(round(fraction * size)))
  coord = np.arange(size)
  edge = (coord < width) | (coord >= size - width)
  band = edge[:, None] | edge[None, :]
  cells = band.reshape(side, block_size, side, block_size).sum((1, 3))
  return cells.reshape(-1).astype(np.float32)
