"""Linear filters and resampling on image batches, with the border rules of
the reference corruption code (scipy.ndimage, OpenCV, Pillow).

Kernels and resampling tables are host constants (NumPy, float64 where the
reference computes in float64) padded to a fixed size, so one compiled
program serves every severity: a zero tap beyond a kernel's true radius
changes nothing, whatever the padding reads.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

# jnp.pad modes named for the reference's border rules: scipy.ndimage's
# 'nearest' repeats the edge pixel, its 'reflect' mirrors including the edge
# (d c b a | a b c d), OpenCV's default BORDER_REFLECT_101 mirrors about it.
NEAREST, SCIPY_REFLECT, CV_REFLECT_101 = "edge", "symmetric", "reflect"


def gaussian_taps(sigma: float, truncate: float, radius: int = 0
                  ) -> np.ndarray:
  """scipy.ndimage's normalised 1-D Gaussian, [2 * R + 1] float32, zero-
  padded to radius R = max(`radius`, its own int(truncate * sigma + 0.5));
  sigma 0 gives the identity [1]."""
  own = int(truncate * sigma + 0.5)
  x = np.arange(-own, own + 1, dtype=np.float64)
  taps = np.exp(-0.5 * x ** 2 / max(sigma, 1e-12) ** 2)
  taps /= taps.sum()
  pad = max(radius - own, 0)
  return np.pad(taps, pad).astype(np.float32)


def stacked_gaussian_taps(sigmas: Sequence[float], truncate: float
                          ) -> np.ndarray:
  """[S, 2R + 1] `gaussian_taps` for each sigma, all zero-padded to the
  widest (one shape for every severity)."""
  radius = max(int(truncate * s + 0.5) for s in sigmas)
  return np.stack([gaussian_taps(s, truncate, radius) for s in sigmas])


def separable(images: jax.Array, taps_h: jax.Array, taps_w: jax.Array,
              mode: str) -> jax.Array:
  """Correlates [B, H, W, C] images with `taps_h` [Kh] down the rows, then
  `taps_w` [Kw] along the columns (odd lengths, centred), each pass padding
  by its radius with `mode` (a jnp.pad mode).

  Each pass is a sum of K shifted copies, which XLA fuses into one loop: on
  XLA:CPU 45x faster than a depthwise convolution at 224 x 224 with 49 taps
  (2,100 against 47 images a second), the same on accelerators.
  """
  rh, rw = taps_h.shape[0] // 2, taps_w.shape[0] // 2
  x = jnp.pad(images, ((0, 0), (rh, rh), (0, 0), (0, 0)), mode=mode)
  x = _shifted_sum(x, taps_h, axis=1)
  x = jnp.pad(x, ((0, 0), (0, 0), (rw, rw), (0, 0)), mode=mode)
  return _shifted_sum(x, taps_w, axis=2)


def _shifted_sum(padded: jax.Array, taps: jax.Array, axis: int) -> jax.Array:
  """'VALID' 1-D correlation of `padded` with `taps` [K] along `axis`."""
  size = padded.shape[axis] - taps.shape[0] + 1
  out = taps[0] * jax.lax.slice_in_dim(padded, 0, size, axis=axis)
  for k in range(1, taps.shape[0]):
    out = out + taps[k] * jax.lax.slice_in_dim(padded, k, k + size,
                                               axis=axis)
  return out


def correlate2d(images: jax.Array, kernel: jax.Array, mode: str) -> jax.Array:
  """Correlates [B, H, W, C] images with one [K, K] kernel (K odd, centred)
  per channel, padding by K // 2 with `mode` (OpenCV's filter2D).

  The channels are folded into the batch, one single-channel convolution
  rather than a grouped one (which XLA:CPU runs at half the speed).
  """
  r = kernel.shape[0] // 2
  x = jnp.pad(images, ((0, 0), (r, r), (r, r), (0, 0)), mode=mode)
  batch, height, width, channels = x.shape
  planes = jnp.transpose(x, (0, 3, 1, 2)).reshape(-1, height, width, 1)
  out = jax.lax.conv_general_dilated(
      planes, kernel.astype(x.dtype)[:, :, None, None], (1, 1), "VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=jax.lax.Precision.HIGHEST)
  out = out.reshape(batch, channels, *out.shape[1:3])
  return jnp.transpose(out, (0, 2, 3, 1))


def lerp_rows(images: jax.Array, coords: jax.Array) -> jax.Array:
  """Linear interpolation down the rows: [B, H, W, C] sampled at `coords`
  [H'] (float, within [0, H - 1]) -> [B, H', W, C]."""
  height = images.shape[1]
  lo = jnp.clip(jnp.floor(coords).astype(jnp.int32), 0, height - 1)
  hi = jnp.minimum(lo + 1, height - 1)
  frac = (coords - lo)[None, :, None, None]
  return (jnp.take(images, lo, axis=1) * (1 - frac)
          + jnp.take(images, hi, axis=1) * frac)


def lerp_cols(images: jax.Array, coords: jax.Array) -> jax.Array:
  """`lerp_rows` along the columns: [B, H, W, C] -> [B, H, W', C]."""
  return jnp.swapaxes(lerp_rows(jnp.swapaxes(images, 1, 2), coords), 1, 2)


def reflect_index(index: jax.Array, size: int, mode: str) -> jax.Array:
  """Integer indices folded into [0, size) by a border rule: SCIPY_REFLECT
  (the edge repeated: -1 -> 0) or CV_REFLECT_101 (-1 -> 1)."""
  if mode == SCIPY_REFLECT:
    period = 2 * size
    index = jnp.mod(index, period)
    return jnp.where(index >= size, period - 1 - index, index)
  period = max(2 * size - 2, 1)
  index = jnp.mod(index, period)
  return jnp.where(index >= size, period - index, index)


def bilinear(image: jax.Array, rows: jax.Array, cols: jax.Array, mode: str
             ) -> jax.Array:
  """One image [H, W, C] sampled at float coordinates `rows`, `cols`
  [H', W'] by bilinear interpolation, indices beyond the border folded by
  `mode` (`reflect_index`) -> [H', W', C]."""
  height, width = image.shape[:2]
  r0, c0 = jnp.floor(rows), jnp.floor(cols)
  fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
  r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)

  def at(r, c):
    return image[reflect_index(r, height, mode), reflect_index(c, width, mode)]

  top = at(r0, c0) * (1 - fc) + at(r0, c0 + 1) * fc
  bottom = at(r0 + 1, c0) * (1 - fc) + at(r0 + 1, c0 + 1) * fc
  return top * (1 - fr) + bottom * fr
