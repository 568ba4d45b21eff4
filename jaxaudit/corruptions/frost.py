"""Frost: a crop of one of five frost photographs blended over the image.

The photographs are the references' own (`frost_images/`, Apache-2.0),
rescaled on the host as the reference rescales them with OpenCV, once per
image size; the device draws the photograph and the crop per image.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxaudit.errors import ConfigError

Params = Mapping[str, jax.Array]
FOLDER = os.path.join(os.path.dirname(__file__), "frost_images")
FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg",
         "frost5.jpg")
# OpenCV's bicubic coefficient.
_CUBIC_A = -0.75


def _cubic(t: np.ndarray) -> np.ndarray:
  t = np.abs(t)
  near = ((_CUBIC_A + 2) * t - (_CUBIC_A + 3)) * t * t + 1
  far = ((_CUBIC_A * t - 5 * _CUBIC_A) * t + 8 * _CUBIC_A) * t - 4 * _CUBIC_A
  return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def resize_matrix(size: int, out: int, kind: str, step: float = 0.0
                  ) -> np.ndarray:
  """OpenCV's `resize` along one axis as an [out, size] matrix: source
  coordinate (x + 0.5) step - 0.5 (step: size / out, or 1 / fx where the
  call gives fx), taps clamped to the edge, "linear" (2 taps) or "cubic"
  (4 taps, a = -0.75)."""
  src = (np.arange(out) + 0.5) * (step or size / out) - 0.5
  base = np.floor(src).astype(np.int64)
  frac = src - base
  matrix = np.zeros((out, size))
  offsets = (0, 1) if kind == "linear" else (-1, 0, 1, 2)
  for k in offsets:
    if kind == "linear":
      weight = 1 - frac if k == 0 else frac
    else:
      weight = _cubic(frac - k)
    np.add.at(matrix, (np.arange(out), np.clip(base + k, 0, size - 1)),
              weight)
  return matrix


def _rescaled(photo: np.ndarray, height: int, width: int, scaled: bool
              ) -> np.ndarray:
  """One photograph [h, w, 3] uint8 as the reference rescales it for an
  image of `height` x `width`: imagecorruptions (`scaled`) enlarges it to
  cover the image if needed, times 1.1, bicubic; make_cifar_c.py shrinks it
  to a fifth, bilinear."""
  h, w = photo.shape[:2]
  if scaled:
    factor = 1.1 * max(1.0, height / h, width / w)
    size = (math.ceil(h * factor), math.ceil(w * factor))
    kind, step = "cubic", 0.0
  else:  # resize(fx=fy=0.2): the step is 1 / fx, not size / out.
    size = (round(h * 0.2), round(w * 0.2))
    kind, step = "linear", 5.0
  rows = resize_matrix(h, size[0], kind, step)
  cols = resize_matrix(w, size[1], kind, step)
  out = np.einsum("uh,hwc->uwc", rows, photo.astype(np.float64),
                  optimize=True)
  out = np.einsum("uwc,vw->uvc", out, cols, optimize=True)
  return np.clip(np.round(out), 0, 255).astype(np.uint8)


def frost_params(rows: Sequence[tuple[float, float]], height: int,
                 width: int, scaled: bool) -> dict[str, np.ndarray]:
  """{"image_weight", "frost_weight": float32 [5]} per severity, and the
  rescaled photographs "photos" uint8 [5, PH, PW, 3] (zero-padded to the
  largest) with "crop_limits" int32 [5, 2] (the exclusive upper bound of a
  crop's corner) shared by all severities."""
  photos = []
  for name in FILES:
    with Image.open(os.path.join(FOLDER, name)) as photo:
      photos.append(_rescaled(np.asarray(photo.convert("RGB")), height,
                              width, scaled))
  if any(p.shape[0] < height or p.shape[1] < width for p in photos):
    smallest = min(photos, key=lambda p: p.shape[0] * p.shape[1]).shape[:2]
    raise ConfigError(
        f"frost: images of {height} x {width} do not fit in the frost "
        f"photographs as the {'imagenet' if scaled else 'cifar'} parameters "
        f"rescale them (the smallest is {smallest[0]} x {smallest[1]}); use "
        "the imagenet parameters, which enlarge them to cover any image")
  tall = max(p.shape[0] for p in photos)
  wide = max(p.shape[1] for p in photos)
  table = np.asarray(rows, np.float32)
  return {
      "image_weight": table[:, 0], "frost_weight": table[:, 1],
      "photos": np.stack([np.pad(p, ((0, tall - p.shape[0]),
                                     (0, wide - p.shape[1]), (0, 0)))
                          for p in photos]),
      "crop_limits": np.asarray([[p.shape[0] - height, p.shape[1] - width]
                                 for p in photos], np.int32)}


# The tables every severity shares (no leading severity axis).
SHARED = ("photos", "crop_limits")


def frost(images: jax.Array, keys: jax.Array, p: Params) -> jax.Array:
  """image_weight x image + frost_weight x a random crop of a random
  photograph."""
  height, width = images.shape[1:3]

  def crop(key):
    k_photo, k_row, k_col = jax.random.split(key, 3)
    which = jax.random.randint(k_photo, (), 0, len(FILES))
    limits = p["crop_limits"][which]
    row = jax.random.randint(k_row, (), 0, limits[0])
    col = jax.random.randint(k_col, (), 0, limits[1])
    return jax.lax.dynamic_slice(p["photos"], (which, row, col, 0),
                                 (1, height, width, 3))[0]

  layer = jax.vmap(crop)(keys).astype(jnp.float32) / 255
  return jnp.clip(p["image_weight"] * images + p["frost_weight"] * layer,
                  0, 1)
