"""Weather corruptions: fog, frost, snow and spatter.

Every function maps images [B, H, W, 3] float32 in [0, 1], keys [B] and its
severity's parameters (from its `*_params`, stacked over the five
severities) to corrupted images [B, H, W, 3] in [0, 1]; each image's layer
(fog, frost crop, snow, liquid) is drawn from its own key.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit.corruptions import blur, color, edge_maps, filters

Params = Mapping[str, jax.Array]


def fog_params(rows: Sequence[tuple[float, float]], height: int, width: int
               ) -> dict[str, np.ndarray]:
  """{"strength", "decay": float32 [5]}: the fog layer's weight and the
  plasma fractal's roughness decay."""
  del height, width
  rows = np.asarray(rows, np.float32)
  return {"strength": rows[:, 0], "decay": rows[:, 1]}


def plasma_fractal(key: jax.Array, size: int, decay: jax.Array
                   ) -> jax.Array:
  """The reference's diamond-square height map [size, size] in [0, 1]
  (`size` a power of two): each level fills square then diamond centres
  with the mean of their corners plus wibble * U(-wibble, wibble), wibble
  starting at 100 and divided by `decay` per level (the reference's
  scaling, kept)."""
  grid = jnp.zeros((size, size), jnp.float32)
  wibble = jnp.float32(100.0)
  step = size
  level = 0
  while step >= 2:  # One pass per level: each level's arrays differ in shape.
    half = step // 2
    k_square, k_left, k_top = jax.random.split(jax.random.fold_in(key, level),
                                               3)

    def wibbled(total, k, wibble=wibble):
      noise = jax.random.uniform(k, total.shape, minval=-1.0, maxval=1.0)
      return total / 4 + wibble * wibble * noise

    corners = grid[0::step, 0::step]
    square = corners + jnp.roll(corners, -1, axis=0)
    square = square + jnp.roll(square, -1, axis=1)
    grid = grid.at[half::step, half::step].set(wibbled(square, k_square))
    centres = grid[half::step, half::step]
    corners = grid[0::step, 0::step]
    left = (centres + jnp.roll(centres, 1, axis=0)
            + corners + jnp.roll(corners, -1, axis=1))
    grid = grid.at[0::step, half::step].set(wibbled(left, k_left))
    top = (centres + jnp.roll(centres, 1, axis=1)
           + corners + jnp.roll(corners, -1, axis=0))
    grid = grid.at[half::step, 0::step].set(wibbled(top, k_top))
    step //= 2
    wibble = wibble / decay
    level += 1
  grid = grid - grid.min()
  return grid / grid.max()


def _power_of_two(n: int) -> int:
  return 1 << max(n - 1, 0).bit_length()


def fog(images: jax.Array, keys: jax.Array, p: Params) -> jax.Array:
  """A plasma-fractal haze added to every channel, the result rescaled by
  max / (max + strength) (max: the image's brightest value)."""
  height, width = images.shape[1:3]
  size = _power_of_two(max(height, width))
  haze = jax.vmap(lambda k: plasma_fractal(k, size, p["decay"]))(keys)
  brightest = jnp.max(images, axis=(1, 2, 3), keepdims=True)
  hazy = images + p["strength"] * haze[:, :height, :width, None]
  return jnp.clip(hazy * brightest / (brightest + p["strength"]), 0, 1)


def snow_params(rows: Sequence[Sequence[float]], height: int, width: int,
                centre_trim: bool) -> dict[str, np.ndarray]:
  """Per severity: the snow layer's normal mean and spread, its zoom as
  source coordinates (`blur.zoom_coords`), the threshold below which it is
  cleared, the motion kernel, and the image's blend weight."""
  rows = [tuple(r) for r in rows]
  zoom_rows = np.stack([blur.zoom_coords(height, r[2], centre_trim)
                        for r in rows]).astype(np.float32)
  zoom_cols = np.stack([blur.zoom_coords(width, r[2], centre_trim)
                        for r in rows]).astype(np.float32)
  motion = blur.motion_params([(r[4], r[5]) for r in rows], height, width)
  table = np.asarray(rows, np.float32)
  return {"mean": table[:, 0], "spread": table[:, 1], "rows": zoom_rows,
          "cols": zoom_cols, "threshold": table[:, 3],
          "kernel": motion["kernel"], "blend": table[:, 6]}


def snow(images: jax.Array, keys: jax.Array, p: Params) -> jax.Array:
  """Flakes: a normal layer zoomed, thresholded, streaked at an angle from
  [-135, -45] degrees and rounded to 8-bit levels, added with its 180-degree
  rotation to the image brightened towards 1.5 x its grey + 0.5."""
  height, width = images.shape[1:3]

  def layer(key):
    k_layer, k_angle = jax.random.split(key)
    flakes = p["mean"] + p["spread"] * jax.random.normal(
        k_layer, (height, width))
    flakes = filters.lerp_cols(filters.lerp_rows(
        flakes[None, :, :, None], p["rows"]), p["cols"])[0]
    flakes = jnp.clip(jnp.where(flakes < p["threshold"], 0.0, flakes), 0, 1)
    angle = jax.random.uniform(k_angle, (), minval=-135.0, maxval=-45.0)
    flakes = blur.streak(flakes, p["kernel"], angle)
    return jnp.round(flakes * 255) / 255

  flakes = jax.vmap(layer)(keys)
  grey = color.luma(images)[..., None]
  bright = (p["blend"] * images
            + (1 - p["blend"]) * jnp.maximum(images, grey * 1.5 + 0.5))
  return jnp.clip(bright + flakes + jnp.flip(flakes, axis=(1, 2)), 0, 1)


def spatter_params(rows: Sequence[Sequence[float]], height: int, width: int
                   ) -> dict[str, np.ndarray]:
  """Per severity: the liquid layer's normal mean and spread, its smoothing
  taps, the threshold below which it is dry, the water's strength or the
  mud's smoothing taps, and whether it is mud (`mud` 1.0) or water."""
  del height, width
  table = np.asarray(rows, np.float64)
  mud = table[:, 5] > 0
  mud_sigmas = np.where(mud, table[:, 4], 0.0)
  return {
      "mean": table[:, 0].astype(np.float32),
      "spread": table[:, 1].astype(np.float32),
      "taps": filters.stacked_gaussian_taps(table[:, 2], blur.TRUNCATE),
      "threshold": table[:, 3].astype(np.float32),
      "strength": np.where(mud, 0.0, table[:, 4]).astype(np.float32),
      "mud_taps": filters.stacked_gaussian_taps(mud_sigmas, blur.TRUNCATE),
      "mud": mud.astype(np.float32)}


def spatter(images: jax.Array, keys: jax.Array, p: Params) -> jax.Array:
  """Water drops (a pale turquoise layer shaped by the liquid's edges) or
  mud (dark brown blots), from a smoothed, thresholded normal layer."""
  height, width = images.shape[1:3]
  liquid = p["mean"] + p["spread"] * jax.vmap(
      lambda k: jax.random.normal(k, (height, width)))(keys)
  liquid = filters.separable(liquid[..., None], p["taps"], p["taps"],
                             filters.NEAREST)[..., 0]
  liquid = jnp.where(liquid < p["threshold"], 0.0, liquid)

  def mud():
    blots = filters.separable((liquid > p["threshold"]).astype(
        jnp.float32)[..., None], p["mud_taps"], p["mud_taps"],
                              filters.NEAREST)
    blots = jnp.where(blots < 0.8, 0.0, blots)
    brown = jnp.asarray([63, 42, 20], jnp.float32) / 255
    return images * (1 - blots) + brown * blots

  out = jax.lax.cond(p["mud"] > 0, mud,
                     lambda: _water(images, liquid, p["strength"]))
  return jnp.clip(out, 0, 1)


def _water(images: jax.Array, liquid: jax.Array, strength: jax.Array
           ) -> jax.Array:
  """The reference's water: the liquid's 8-bit levels weighted by an
  equalised, embossed distance to its Canny edges, normalised per image,
  times `strength`, adds (175, 238, 238) / 255 of colour."""
  levels = jnp.floor(liquid * 255)
  edges = edge_maps.canny(levels, 50.0, 150.0)
  dist = jnp.minimum(edge_maps.chamfer_distance(edges), 20.0)
  dist = jnp.floor(edge_maps.box3(dist))
  dist = edge_maps.equalize(dist)
  dist = edge_maps.emboss(dist)
  dist = jnp.round(edge_maps.box3(dist))
  weight = levels * dist
  weight = weight / jnp.maximum(jnp.max(weight, axis=(1, 2), keepdims=True),
                                1e-12)
  colour = jnp.asarray([175, 238, 238], jnp.float32) / 255
  return images + (strength * weight)[..., None] * colour
