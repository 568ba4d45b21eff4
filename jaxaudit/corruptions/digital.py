"""Digital corruptions: contrast, brightness, saturation and pixelation
(deterministic: the same image always gives the same result).

Every function maps images [B, H, W, 3] float32 in [0, 1], keys [B] (unused:
the signature is every corruption's) and its severity's parameters to
corrupted images [B, H, W, 3] in [0, 1].
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit.corruptions import color, filters

Params = Mapping[str, jax.Array]


def scale_params(rows: Sequence[float], height: int, width: int
                 ) -> dict[str, np.ndarray]:
  """One number per severity, {"c": float32 [5]}: the noise scales,
  contrast and brightness."""
  del height, width
  return {"c": np.asarray(rows, np.float32)}


def contrast(images: jax.Array, keys: jax.Array, p: Params) -> jax.Array:
  """Each channel pulled towards its image mean by the factor c."""
  del keys
  means = jnp.mean(images, axis=(1, 2), keepdims=True)
  return jnp.clip((images - means) * p["c"] + means, 0, 1)


def brightness(images: jax.Array, keys: jax.Array, p: Params) -> jax.Array:
  """HSV value raised by c."""
  del keys
  hsv = color.rgb_to_hsv(images)
  hsv = hsv.at[..., 2].set(jnp.clip(hsv[..., 2] + p["c"], 0, 1))
  return jnp.clip(color.hsv_to_rgb(hsv), 0, 1)


def saturate_params(rows: Sequence[tuple[float, float]], height: int,
                    width: int) -> dict[str, np.ndarray]:
  """{"scale", "shift": float32 [5]} of the HSV saturation."""
  del height, width
  rows = np.asarray(rows, np.float32)
  return {"scale": rows[:, 0], "shift": rows[:, 1]}


def saturate(images: jax.Array, keys: jax.Array, p: Params) -> jax.Array:
  """HSV saturation s -> clip(s * scale + shift)."""
  del keys
  hsv = color.rgb_to_hsv(images)
  hsv = hsv.at[..., 1].set(
      jnp.clip(hsv[..., 1] * p["scale"] + p["shift"], 0, 1))
  return jnp.clip(color.hsv_to_rgb(hsv), 0, 1)


def _box_weights(size: int, out: int) -> np.ndarray:
  """Pillow's BOX reduction from `size` to `out` pixels along one axis as a
  [out, size] matrix (each row: the pixels whose centres fall in the box,
  equally weighted)."""
  scale = size / out
  support = 0.5 * scale
  matrix = np.zeros((out, size), np.float64)
  for x in range(out):
    center = (x + 0.5) * scale
    lo = max(int(center - support + 0.5), 0)
    hi = min(int(center + support + 0.5), size)
    taps = np.arange(lo, hi)
    t = (taps - center + 0.5) / scale
    inside = (t > -0.5) & (t <= 0.5)
    matrix[x, taps[inside]] = 1.0
  return matrix / matrix.sum(axis=1, keepdims=True)


def _nearest(size: int, out: int) -> np.ndarray:
  """Pillow's NEAREST enlargement from `size` to `out` pixels: the source
  index of each output pixel [out]."""
  return np.minimum(((np.arange(out) + 0.5) * (size / out)).astype(np.int64),
                    size - 1)


def pixelate_params(rows: Sequence[float], height: int, width: int
                    ) -> dict[str, np.ndarray]:
  """Pillow's BOX reduction to int(side * c) pixels and NEAREST enlargement
  back, per axis, as tables padded to the largest reduced size:
  {"down_h" [5, h, H], "up_h" [5, H], "down_w" [5, w, W], "up_w" [5, W]}
  (padding rows of a `down` table are zero and never read)."""
  out = {}
  for axis, size in (("h", height), ("w", width)):
    smaller = [max(int(size * c), 1) for c in rows]
    widest = max(smaller)
    down = np.zeros((len(rows), widest, size), np.float32)
    up = np.zeros((len(rows), size), np.int32)
    for s, small in enumerate(smaller):
      down[s, :small] = _box_weights(size, small)
      up[s] = _nearest(small, size)
    out[f"down_{axis}"], out[f"up_{axis}"] = down, up
  return out


def _to_levels(x: jax.Array) -> jax.Array:
  """Rounds [0, 1] values to Pillow's 8-bit levels (each resampling pass
  writes an 8-bit image)."""
  return jnp.clip(jnp.floor(x * 255 + 0.5), 0, 255) / 255


def pixelate(images: jax.Array, keys: jax.Array, p: Params) -> jax.Array:
  """Pillow's `resize(BOX)` to a fraction c of each side, then
  `resize(NEAREST)` back: the columns pass first, each pass rounding to
  8-bit levels as Pillow does."""
  del keys
  hp = jax.lax.Precision.HIGHEST
  x = _to_levels(jnp.einsum("bhwc,vw->bhvc", images, p["down_w"],
                            precision=hp))
  x = _to_levels(jnp.einsum("bhwc,uh->buwc", x, p["down_h"], precision=hp))
  x = jnp.take(x, p["up_h"], axis=1)
  return jnp.take(x, p["up_w"], axis=2)


# The elastic displacement's Gaussian extent (both references: truncate=3).
ELASTIC_TRUNCATE = 3.0


def elastic_params(rows: Sequence[Sequence[float]], height: int, width: int,
                   scaled: bool) -> dict[str, np.ndarray]:
  """Per severity: the displacement field's smoothing taps per axis, its
  amplitude `alpha`, the uniform noise's half-range `spread`, and the random
  affine's corner `jitter` (pixels).

  `scaled` (imagenet-c / imagecorruptions): each row is alpha; sigma is 1%
  of each side, the noise spans +-0.5% of the height, no affine. Otherwise
  (make_cifar_c.py) each row is (alpha, sigma, jitter) as fractions of the
  height, the noise spans +-1, after a random affine warp.
  """
  if scaled:
    sigmas = [(0.01 * height, 0.01 * width)] * len(rows)
    alpha = np.asarray(rows, np.float32)
    spread = np.full(len(rows), 0.005 * height, np.float32)
    jitter = np.zeros(len(rows), np.float32)
  else:
    table = np.asarray(rows, np.float64) * height
    sigmas = [(s, s) for s in table[:, 1]]
    alpha, spread = table[:, 0].astype(np.float32), np.ones(len(rows),
                                                            np.float32)
    jitter = table[:, 2].astype(np.float32)
  out = {"alpha": alpha, "spread": spread, "jitter": jitter}
  for axis, name in ((0, "taps_h"), (1, "taps_w")):
    out[name] = filters.stacked_gaussian_taps([s[axis] for s in sigmas],
                                              ELASTIC_TRUNCATE)
  return out


def _affine_source(key: jax.Array, height: int, width: int,
                   jitter: jax.Array) -> tuple[jax.Array, jax.Array]:
  """make_cifar_c.py's random affine as source coordinates (rows, cols)
  [H, W]: three corners of the central square (side 2 min(H, W) // 3)
  moved by U(-jitter, jitter) each, the warp that maps them so (OpenCV's
  getAffineTransform), inverted to sample the source."""
  side = min(height, width) // 3
  cx, cy = width // 2, height // 2
  before = jnp.asarray([[cx + side, cy + side], [cx + side, cy - side],
                        [cx - side, cy - side]], jnp.float32)
  after = before + jax.random.uniform(key, (3, 2), minval=-1.0,
                                      maxval=1.0) * jitter
  ones = jnp.ones((3, 1), jnp.float32)
  # [x y 1] @ forward = [x' y']: forward [3, 2] maps before to after.
  forward = jnp.linalg.solve(jnp.concatenate([before, ones], 1), after)
  linear, shift = forward[:2].T, forward[2]
  yy, xx = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32),
                        jnp.arange(width, dtype=jnp.float32), indexing="ij")
  target = jnp.stack([xx, yy], -1) - shift
  source = target @ jnp.linalg.inv(linear).T
  return source[..., 1], source[..., 0]


def elastic_transform(images: jax.Array, keys: jax.Array, p: Params
                      ) -> jax.Array:
  """A random affine warp (borders mirrored about the edge pixel; the
  identity where `jitter` is 0), then each pixel displaced by alpha x
  Gaussian-smoothed uniform noise, resampled bilinearly (borders mirrored
  including the edge pixel, scipy's map_coordinates(order=1,
  mode='reflect'))."""
  height, width = images.shape[1:3]

  def one(image, key):
    k_affine, k_rows, k_cols = jax.random.split(key, 3)
    rows, cols = _affine_source(k_affine, height, width, p["jitter"])
    image = filters.bilinear(image, rows, cols, filters.CV_REFLECT_101)

    def field(k):
      noise = jax.random.uniform(k, (1, height, width, 1), minval=-1.0,
                                 maxval=1.0) * p["spread"]
      smooth = filters.separable(noise, p["taps_h"], p["taps_w"],
                                 filters.SCIPY_REFLECT)
      return smooth[0, :, :, 0] * p["alpha"]

    yy, xx = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32),
                          jnp.arange(width, dtype=jnp.float32),
                          indexing="ij")
    return filters.bilinear(image, yy + field(k_rows), xx + field(k_cols),
                            filters.SCIPY_REFLECT)

  return jnp.clip(jax.vmap(one)(images, keys), 0, 1)
