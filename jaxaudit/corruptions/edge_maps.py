"""The OpenCV steps of the references' spatter (water) layer on [B, H, W]
maps of 8-bit levels: Canny edges, the chamfer distance to them, a 3 x 3 box
blur, histogram equalisation and the embossing filter, with OpenCV's
borders, fixed-point weights and rounding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit.corruptions import filters

# canny.cpp: tan(22.5 deg) in 15-bit fixed point.
_CANNY_SHIFT = 15
_TG22 = int(0.4142135623730950488 * (1 << _CANNY_SHIFT) + 0.5)
# distanceTransform(DIST_L2, 5): step, diagonal and knight-move lengths in
# 16-bit fixed point (a = 1, b = 1.4, c = 2.1969).
_DIST_SHIFT = 16
_STEPS = {1: round(1.0 * 65536), 2: round(1.4 * 65536),
          5: round(2.1969 * 65536)}
_EMBOSS = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)


def _shift(x: jax.Array, dy: int, dx: int, fill) -> jax.Array:
  """x[:, i + dy, j + dx] for [B, H, W] with `fill` outside."""
  h, w = x.shape[1:]
  padded = jnp.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=fill)
  return padded[:, 2 + dy:2 + dy + h, 2 + dx:2 + dx + w]


def canny(levels: jax.Array, low: float, high: float) -> jax.Array:
  """cv2.Canny(levels, low, high) (3 x 3 Sobel with the border repeated,
  L1 magnitude) -> bool [B, H, W] edges."""
  padded = jnp.pad(levels, ((0, 0), (1, 1), (1, 1)), mode="edge")
  h, w = levels.shape[1:]

  def at(dy, dx):
    return padded[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

  dx = (at(-1, 1) - at(-1, -1) + 2 * (at(0, 1) - at(0, -1))
        + at(1, 1) - at(1, -1)).astype(jnp.int32)
  dy = (at(1, -1) - at(-1, -1) + 2 * (at(1, 0) - at(-1, 0))
        + at(1, 1) - at(-1, 1)).astype(jnp.int32)
  mag = jnp.abs(dx) + jnp.abs(dy)
  x, y = jnp.abs(dx), jnp.abs(dy) << _CANNY_SHIFT
  tg22x = x * _TG22
  tg67x = tg22x + (x << (_CANNY_SHIFT + 1))
  s = jnp.where((dx ^ dy) < 0, -1, 1)
  left, right = _shift(mag, 0, -1, 0), _shift(mag, 0, 1, 0)
  up, down = _shift(mag, -1, 0, 0), _shift(mag, 1, 0, 0)
  up_left, up_right = _shift(mag, -1, -1, 0), _shift(mag, -1, 1, 0)
  down_left, down_right = _shift(mag, 1, -1, 0), _shift(mag, 1, 1, 0)
  horizontal = (mag > left) & (mag >= right)
  vertical = (mag > up) & (mag >= down)
  # s = -1: previous row at j + 1, next row at j - 1; s = 1: the reverse.
  diagonal = jnp.where(s < 0, (mag > up_right) & (mag > down_left),
                       (mag > up_left) & (mag > down_right))
  peak = jnp.where(y < tg22x, horizontal,
                   jnp.where(y > tg67x, vertical, diagonal))
  weak = peak & (mag > int(np.floor(low)))
  strong = weak & (mag > int(np.floor(high)))

  def grow(state):
    edges, _ = state
    near = jax.lax.reduce_window(edges, False, jax.lax.max, (1, 3, 3),
                                 (1, 1, 1), "SAME")
    grown = edges | (weak & near)
    return grown, jnp.any(grown != edges)

  edges, _ = jax.lax.while_loop(lambda s: s[1], grow, (strong, True))
  return edges


def chamfer_distance(edges: jax.Array) -> jax.Array:
  """cv2.distanceTransform(255 - edges, DIST_L2, 5): each pixel's 5 x 5
  chamfer distance to the nearest edge, found by relaxing every move in
  parallel until nothing shortens (float32, huge where there is no edge)."""
  far = jnp.int32(2 ** 30)
  start = jnp.where(edges, 0, far)
  moves = [(dy, dx, _STEPS[dy * dy + dx * dx])
           for dy in range(-2, 3) for dx in range(-2, 3)
           if dy * dy + dx * dx in _STEPS]

  def relax(state):
    dist, _ = state
    best = dist
    for dy, dx, step in moves:
      best = jnp.minimum(best, _shift(dist, dy, dx, far) + step)
    return best, jnp.any(best != dist)

  dist, _ = jax.lax.while_loop(lambda s: s[1], relax, (start, True))
  return dist.astype(jnp.float32) * jnp.float32(1.0 / (1 << _DIST_SHIFT))


def box3(x: jax.Array) -> jax.Array:
  """cv2.blur(x, (3, 3)): the 3 x 3 sum times 1/9, border mirrored about
  the edge pixel."""
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1)), mode="reflect")
  h, w = x.shape[1:]
  total = sum(padded[:, i:i + h, j:j + w] for i in range(3)
              for j in range(3))
  return total * jnp.float32(1.0 / 9.0)


def equalize(levels: jax.Array) -> jax.Array:
  """cv2.equalizeHist per map of 8-bit levels [B, H, W]: the first
  occupied level maps to 0, level i to round(255 x (share of the pixels
  above the first level up to i)); a constant map stays as it is."""
  count = levels.shape[1] * levels.shape[2]
  values = levels.astype(jnp.int32).reshape(levels.shape[0], -1)
  hist = jax.vmap(lambda v: jnp.bincount(v, length=256))(values)
  first = jnp.argmax(hist > 0, axis=1)
  first_count = jnp.take_along_axis(hist, first[:, None], 1)
  scale = 255.0 / jnp.maximum(count - first_count, 1).astype(jnp.float32)
  cumulative = jnp.cumsum(hist, axis=1) - first_count
  lut = jnp.clip(jnp.round(cumulative.astype(jnp.float32) * scale), 0, 255)
  lut = jnp.where(jnp.arange(256)[None] <= first[:, None], 0.0, lut)
  mapped = jnp.take_along_axis(lut, values, 1).reshape(levels.shape)
  return jnp.where((first_count == count)[:, :, None], levels, mapped)


def emboss(levels: jax.Array) -> jax.Array:
  """cv2.filter2D(levels, CV_8U, [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]):
  rounded and clipped to 8-bit levels."""
  out = filters.correlate2d(levels[..., None], jnp.asarray(_EMBOSS),
                            filters.CV_REFLECT_101)[..., 0]
  return jnp.clip(jnp.round(out), 0, 255)
