"""Blur corruptions: Gaussian, defocus (a disk), zoom, motion and glass blur.

Every function maps images [B, H, W, 3] float32 in [0, 1], keys [B] and its
severity's parameters (from its `*_params`, stacked over the five
severities and padded to one shape, so one program serves them all) to
corrupted images [B, H, W, 3] in [0, 1]. Gaussian, defocus and zoom blur are
deterministic; motion blur draws an angle per image, glass blur its local
pixel shuffle.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit.corruptions import filters

Params = Mapping[str, jax.Array]
# scikit-image's `gaussian` (scipy.ndimage.gaussian_filter) default extent.
TRUNCATE = 4.0


def gaussian_params(rows: Sequence[float], height: int, width: int
                    ) -> dict[str, np.ndarray]:
  """{"taps": float32 [5, K]} for sigma = each row."""
  del height, width
  return {"taps": filters.stacked_gaussian_taps(rows, TRUNCATE)}


def gaussian_blur(images: jax.Array, keys: jax.Array, p: Params
                  ) -> jax.Array:
  """scikit-image's `gaussian(sigma)` over rows and columns, edge pixels
  repeated at the border."""
  del keys
  return jnp.clip(filters.separable(images, p["taps"], p["taps"],
                                    filters.NEAREST), 0, 1)


def _cv_gaussian_kernel(size: int, sigma: float) -> np.ndarray:
  """OpenCV's getGaussianKernel(size, sigma) for sigma > 0."""
  x = np.arange(size) - (size - 1) / 2
  taps = np.exp(-x ** 2 / (2 * sigma ** 2))
  return taps / taps.sum()


def disk(radius: float, alias_blur: float) -> np.ndarray:
  """The defocus kernel of the reference: a disk of `radius` on a grid of
  at least 17 x 17, normalised, then smoothed by OpenCV's 3 x 3 (radius <= 8)
  or 5 x 5 Gaussian of sigma `alias_blur` (mirrored border) [K, K]."""
  extent = 8 if radius <= 8 else int(radius)
  size = 3 if radius <= 8 else 5
  grid = np.arange(-extent, extent + 1)
  xx, yy = np.meshgrid(grid, grid)
  aliased = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float32)
  aliased /= aliased.sum()
  taps = _cv_gaussian_kernel(size, alias_blur)
  pad = size // 2
  padded = np.pad(aliased.astype(np.float64), pad, mode="reflect")
  rows = sum(taps[i] * padded[i:i + aliased.shape[0]] for i in range(size))
  out = sum(taps[j] * rows[:, j:j + aliased.shape[1]] for j in range(size))
  return out.astype(np.float32)


def defocus_params(rows: Sequence[tuple[float, float]], height: int,
                   width: int) -> dict[str, np.ndarray]:
  """{"kernel": float32 [5, K, K]}: each severity's disk, zero-padded to the
  largest."""
  del height, width
  kernels = [disk(radius, blur) for radius, blur in rows]
  size = max(k.shape[0] for k in kernels)
  return {"kernel": np.stack([
      np.pad(k, (size - k.shape[0]) // 2) for k in kernels])}


def defocus_blur(images: jax.Array, keys: jax.Array, p: Params
                 ) -> jax.Array:
  """Each channel correlated with the disk (OpenCV's filter2D, border
  mirrored about the edge pixel)."""
  del keys
  return jnp.clip(filters.correlate2d(images, p["kernel"],
                                      filters.CV_REFLECT_101), 0, 1)


def zoom_coords(size: int, factor: float, centre_trim: bool) -> np.ndarray:
  """Source coordinates [size] of the reference's `clipped_zoom` along one
  axis: the centre ceil(size / factor) pixels enlarged by scipy's
  `zoom(order=1)` (corner-aligned: (n - 1) / (m - 1)), then `size` output
  pixels kept: the first (imagecorruptions) or the centre ones
  (`centre_trim`, make_cifar_c.py)."""
  crop = int(np.ceil(size / float(factor)))
  top = (size - crop) // 2
  out = int(round(crop * factor))
  step = (crop - 1) / (out - 1) if out > 1 else 0.0
  first = (out - size) // 2 if centre_trim else 0
  return top + (first + np.arange(size)) * step


def zoom_params(rows: Sequence[Sequence[float]], height: int, width: int,
                centre_trim: bool) -> dict[str, np.ndarray]:
  """Each severity's zoom factors as source coordinates, padded to the most
  factors: {"rows" [5, F, H], "cols" [5, F, W], "used" [5, F]}."""
  most = max(len(r) for r in rows)
  out = {"rows": np.zeros((len(rows), most, height), np.float32),
         "cols": np.zeros((len(rows), most, width), np.float32),
         "used": np.zeros((len(rows), most), np.float32)}
  for s, factors in enumerate(rows):
    for f, factor in enumerate(factors):
      out["rows"][s, f] = zoom_coords(height, factor, centre_trim)
      out["cols"][s, f] = zoom_coords(width, factor, centre_trim)
      out["used"][s, f] = 1.0
  return out


def zoom_blur(images: jax.Array, keys: jax.Array, p: Params) -> jax.Array:
  """The mean of the image and its centre zoomed by each factor."""
  del keys

  def add(total, layer):
    rows, cols, used = layer
    zoomed = filters.lerp_cols(filters.lerp_rows(images, rows), cols)
    return total + used * zoomed, None

  total, _ = jax.lax.scan(add, images, (p["rows"], p["cols"], p["used"]))
  return jnp.clip(total / (1.0 + jnp.sum(p["used"])), 0, 1)


def motion_params(rows: Sequence[tuple[float, float]], height: int,
                  width: int) -> dict[str, np.ndarray]:
  """The reference's one-sided Gaussian motion kernel per severity, over
  2 radius + 1 taps, zero-padded to the longest: {"kernel": [5, K]}."""
  del height, width
  kernels = []
  for radius, sigma in rows:
    taps = np.exp(-np.arange(2 * int(radius) + 1) ** 2 / (2 * sigma ** 2))
    kernels.append(taps / taps.sum())
  longest = max(len(k) for k in kernels)
  return {"kernel": np.stack([np.pad(k, (0, longest - len(k)))
                              for k in kernels]).astype(np.float32)}


def streak(image: jax.Array, kernel: jax.Array, angle: jax.Array
           ) -> jax.Array:
  """One image [H, W, C] smeared along `angle` (degrees): the sum of
  kernel[i] x the image shifted i pixels along it (edge pixels repeated),
  stopping where a shift leaves the image (the reference's `_motion_blur`)."""
  height, width = image.shape[:2]
  sin, cos = jnp.sin(jnp.deg2rad(angle)), jnp.cos(jnp.deg2rad(angle))
  rows, cols = jnp.arange(height), jnp.arange(width)

  def tap(i, carry):
    total, inside = carry
    dy = -jnp.ceil(i * sin - 0.5).astype(jnp.int32)
    dx = -jnp.ceil(i * cos - 0.5).astype(jnp.int32)
    inside &= (jnp.abs(dy) < height) & (jnp.abs(dx) < width)
    shifted = image[jnp.clip(rows - dy, 0, height - 1)][
        :, jnp.clip(cols - dx, 0, width - 1)]
    return total + jnp.where(inside, kernel[i], 0.0) * shifted, inside

  total, _ = jax.lax.fori_loop(0, kernel.shape[0], tap,
                               (jnp.zeros_like(image), jnp.bool_(True)))
  return total


def motion_blur(images: jax.Array, keys: jax.Array, p: Params) -> jax.Array:
  """A streak at an angle drawn uniformly from [-45, 45] degrees per
  image."""
  angles = jax.vmap(lambda k: jax.random.uniform(k, (), minval=-45.0,
                                                 maxval=45.0))(keys)
  out = jax.vmap(streak, in_axes=(0, None, 0))(images, p["kernel"], angles)
  return jnp.clip(out, 0, 1)


def glass_params(rows: Sequence[tuple[float, int, int]], height: int,
                 width: int) -> dict[str, np.ndarray]:
  """{"taps" [5, K] (the Gaussian of sigma), "delta" int32 [5] (the largest
  shuffle distance), "iterations" int32 [5]}."""
  del height, width
  return {"taps": filters.stacked_gaussian_taps([r[0] for r in rows],
                                                TRUNCATE),
          "delta": np.asarray([r[1] for r in rows], np.int32),
          "iterations": np.asarray([r[2] for r in rows], np.int32)}


def _pass_sources(keys: jax.Array, delta: jax.Array, first_step: jax.Array,
                  height: int, width: int) -> jax.Array:
  """int32 [B, H * W]: for each pixel, the pixel of the state before one
  pass of the reference's shuffle whose value it holds after the pass.

  The reference visits rows from H - delta down to delta + 1 and, in each,
  columns from W - delta down to delta + 1; step `first_step + cell` (the
  visit's number) overwrites the pixel with the one (dy, dx) away, (dx, dy)
  drawn from [-delta, delta) with the image's key folded with the step. A
  source visited earlier in the pass hands on its new value, so each pixel
  follows a chain of sources back to one not yet overwritten when read, the
  chain's steps strictly earlier: pointer doubling resolves every chain at
  once in log2(its length) gathers (a handful: most sources are not
  visited before), exactly, where a loop over the H * W steps took as many
  dependent scatters (tens of seconds a batch on a GPU).
  """
  rows = jnp.arange(height)[:, None]
  cols = jnp.arange(width)[None, :]
  inside = ((rows > delta) & (rows <= height - delta) & (cols > delta)
            & (cols <= width - delta)).reshape(-1)
  cell = ((height - delta - rows) * (width - 2 * delta)
          + width - delta - cols).reshape(-1)
  draw = jax.vmap(jax.vmap(lambda k, t: jax.random.randint(
      jax.random.fold_in(k, t), (2,), -delta, delta), in_axes=(None, 0)),
                  in_axes=(0, None))
  offsets = draw(keys, first_step + cell)
  here = jnp.arange(height * width)
  source = jnp.where(inside, here + offsets[..., 1] * width + offsets[..., 0],
                     here)
  done = ~(inside & inside[source] & (cell[source] < cell))

  def unresolved(carry):
    return ~jnp.all(carry[1])

  def jump(carry):
    source, done = carry
    onward = jnp.take_along_axis(source, source, axis=1)
    return (jnp.where(done, source, onward),
            done | jnp.take_along_axis(done, source, axis=1))

  return jax.lax.while_loop(unresolved, jump, (source, done))[0]


def _shuffle_pixels(images: jax.Array, keys: jax.Array, delta: jax.Array,
                    iterations: jax.Array) -> jax.Array:
  """The reference's local shuffle, `iterations` passes of `_pass_sources`,
  each a gather of the batch [B, H * W, C].

  Overwritten, not swapped: the reference's `x[h, w], x[h', w'] = x[h', w'],
  x[h, w]` assigns NumPy views, so its second assignment copies back the
  value the first just wrote (ImageNet-C and CIFAR-10-C were made so).
  """
  batch, height, width, channels = images.shape
  per_pass = (height - 2 * delta) * (width - 2 * delta)

  def one_pass(index, table):
    sources = _pass_sources(keys, delta, index * per_pass, height, width)
    return jnp.take_along_axis(table, sources[..., None], axis=1)

  table = jax.lax.fori_loop(0, iterations, one_pass,
                            images.reshape(batch, height * width, channels))
  return table.reshape(images.shape)


def glass_blur(images: jax.Array, keys: jax.Array, p: Params) -> jax.Array:
  """Gaussian blur, rounded down to 8-bit levels, local pixel shuffling,
  and the Gaussian blur again."""
  blurred = filters.separable(images, p["taps"], p["taps"], filters.NEAREST)
  levels = jnp.floor(blurred * 255)
  shuffled = _shuffle_pixels(levels, keys, p["delta"], p["iterations"]) / 255
  return jnp.clip(filters.separable(shuffled, p["taps"], p["taps"],
                                    filters.NEAREST), 0, 1)

