"""RGB <-> HSV (scikit-image's conventions: hue in [0, 1), zero hue and
saturation where the pixel is grey) and luma, on [..., 3] pixels in [0, 1]."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def rgb_to_hsv(rgb: jax.Array) -> jax.Array:
  """[..., 3] RGB -> [..., 3] HSV; where several channels share the maximum,
  blue's formula wins, then green's (as scikit-image assigns them)."""
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  value = jnp.max(rgb, axis=-1)
  delta = value - jnp.min(rgb, axis=-1)
  grey = delta == 0
  safe = jnp.where(grey, 1.0, delta)
  saturation = jnp.where(value > 0, delta / jnp.where(value > 0, value, 1.0),
                         0.0)
  hue = jnp.where(b == value, 4.0 + (r - g) / safe,
                  jnp.where(g == value, 2.0 + (b - r) / safe, (g - b) / safe))
  hue = jnp.where(grey, 0.0, jnp.mod(hue / 6.0, 1.0))
  saturation = jnp.where(grey, 0.0, saturation)
  return jnp.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(hsv: jax.Array) -> jax.Array:
  """[..., 3] HSV -> [..., 3] RGB (the sextant formula)."""
  h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
  sextant = jnp.floor(h * 6.0)
  f = h * 6.0 - sextant
  sextant = jnp.mod(sextant, 6).astype(jnp.int32)
  p = v * (1 - s)
  q = v * (1 - f * s)
  t = v * (1 - (1 - f) * s)
  table = jnp.stack([jnp.stack(c, -1) for c in (
      (v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], 0)
  return jnp.take_along_axis(table, sextant[None, ..., None], axis=0)[0]


def luma(rgb: jax.Array) -> jax.Array:
  """[..., 3] -> [...]: OpenCV's RGB2GRAY weights (ITU-R BT.601)."""
  return rgb @ jnp.asarray([0.299, 0.587, 0.114], rgb.dtype)
