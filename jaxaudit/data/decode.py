"""Decoding and resizing photos as real folders hold them.

Handles grayscale, CMYK, palette and alpha images, PNGs named `.JPEG`, and very
large JPEGs (decoded at reduced size with `Image.draft`, which lets libjpeg skip
most of the work). Every failure names the file.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from jaxaudit.errors import DataError
from jaxaudit.models.classifier import Preprocessing

Image.MAX_IMAGE_PIXELS = 30_000 * 30_000


def _to_rgb(image: Image.Image) -> Image.Image:
  """RGB with any alpha composited onto white (what a viewer shows)."""
  if image.mode in ("RGBA", "LA") or (image.mode == "P"
                                       and "transparency" in image.info):
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")
  return image.convert("RGB")


def resize_and_crop(image: Image.Image, prep: Preprocessing) -> np.ndarray:
  """Resizes the short side to `prep.resize_size` (bicubic, antialiased), then
  centre-crops `prep.image_size`.

  Returns:
    uint8 [image_size, image_size, 3].
  """
  image = _to_rgb(image)
  width, height = image.size
  scale = prep.resize_size / min(width, height)
  if (width, height) != (prep.image_size, prep.image_size):
    new_size = (max(prep.image_size, round(width * scale)),
                max(prep.image_size, round(height * scale)))
    if new_size != (width, height):
      image = image.resize(new_size, Image.Resampling.BICUBIC,
                           reducing_gap=None)
    width, height = image.size
    left = (width - prep.image_size) // 2
    top = (height - prep.image_size) // 2
    image = image.crop((left, top, left + prep.image_size,
                        top + prep.image_size))
  return np.asarray(image, dtype=np.uint8)


def decode_image(data: bytes | str, prep: Preprocessing,
                 name: str = "") -> np.ndarray:
  """Decodes an encoded image (bytes or a path) into a model-ready crop.

  Args:
    data: encoded bytes, or a file path.
    prep: the model's resize/crop.
    name: how to name the image in errors (defaults to the path).

  Returns:
    uint8 [prep.image_size, prep.image_size, 3].

  Raises:
    DataError: the file is missing, truncated or not an image.
  """
  name = name or (data if isinstance(data, str) else "<bytes>")
  try:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with Image.open(source) as image:
      if image.format == "JPEG":
        width, height = image.size
        scale = prep.resize_size / min(width, height)
        image.draft("RGB", (int(width * scale) + 1, int(height * scale) + 1))
      image.load()
      return resize_and_crop(image, prep)
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    raise DataError(f"cannot decode image {name}: {e}") from e


def prepare_array(image: np.ndarray, prep: Preprocessing,
                  name: str = "") -> np.ndarray:
  """Resizes/crops an already decoded uint8 [H, W, 3] (or [H, W]) array."""
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim not in (2, 3):
    raise DataError(f"image {name}: expected uint8 [H, W(, C)], got "
                    f"{image.dtype} {image.shape}")
  if image.ndim == 3 and image.shape[-1] == 3 and image.shape[:2] == (
      prep.image_size, prep.image_size):
    return image
  return resize_and_crop(Image.fromarray(image), prep)
