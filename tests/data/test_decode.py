"""Decoding survives what real folders hold; failures name the file."""

import io

import ml_collections
import numpy as np
from PIL import Image
import pytest

from jaxaudit import classes
from jaxaudit.data import dataset, decode, sources
from jaxaudit.errors import DataError
from jaxaudit.models.classifier import Preprocessing

PREP = Preprocessing(image_size=64, resize_size=72)
IMAGENET_NAMES = classes.class_names(classes.IMAGENET1K)


def _photo(size=(120, 90)):
  """A smooth colour image with a red square in the centre."""
  w, h = size
  y, x = np.mgrid[0:h, 0:w]
  image = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 128)], -1)
  image[h // 2 - 5:h // 2 + 5, w // 2 - 5:w // 2 + 5] = (255, 0, 0)
  return image.astype(np.uint8)


def _save(image: Image.Image, path, fmt, **kwargs):
  image.save(path, format=fmt, **kwargs)
  return str(path)


def test_modes_all_become_rgb_crops(tmp_path):
  rgb = Image.fromarray(_photo())
  cases = {
      "gray.JPEG": (rgb.convert("L"), "JPEG"),
      "cmyk.JPEG": (rgb.convert("CMYK"), "JPEG"),
      "png_named.JPEG": (rgb, "PNG"),
      "palette.png": (rgb.convert("P"), "PNG"),
      "alpha.png": (rgb.convert("RGBA"), "PNG"),
  }
  for name, (image, fmt) in cases.items():
    out = decode.decode_image(_save(image, tmp_path / name, fmt), PREP)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8, name
    centre = out[32, 32].astype(int)
    if name.startswith("gray"):
      assert centre[0] == centre[1] == centre[2], name
    else:
      assert centre[0] > 180 and centre[1] < 90, (name, centre)


def test_transparent_pixels_composite_on_white(tmp_path):
  rgba = np.zeros((80, 80, 4), np.uint8)
  path = _save(Image.fromarray(rgba, "RGBA"), tmp_path / "clear.png", "PNG")
  assert (decode.decode_image(path, PREP) == 255).all()


def test_large_jpeg_decodes_reduced_and_matches_full_decode(tmp_path):
  big = Image.fromarray(_photo((4000, 3000)))
  path = _save(big, tmp_path / "big.jpg", "JPEG", quality=90)
  reduced = decode.decode_image(path, PREP).astype(int)
  full = decode.resize_and_crop(Image.open(path).convert("RGB"), PREP).astype(int)
  assert np.abs(reduced - full).mean() < 3


def test_corrupt_file_is_named(tmp_path):
  path = tmp_path / "broken.JPEG"
  path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
  with pytest.raises(DataError, match="broken.JPEG"):
    decode.decode_image(str(path), PREP)


def test_truncated_jpeg_is_named(tmp_path):
  data = io.BytesIO()
  Image.fromarray(_photo()).save(data, format="JPEG")
  path = tmp_path / "cut.jpg"
  path.write_bytes(data.getvalue()[:200])
  with pytest.raises(DataError, match="cut.jpg"):
    decode.decode_image(str(path), PREP)


def test_skip_bad_drops_only_the_bad_file(tmp_path):
  folder = tmp_path / "imgs"
  folder.mkdir()
  Image.fromarray(_photo()).save(folder / "n01440764_tench.JPEG")
  (folder / "n01443537_goldfish.JPEG").write_bytes(b"garbage")
  Image.fromarray(_photo()).save(folder / "n01484850_shark.JPEG")
  labels = classes.LabelSpace.of(IMAGENET_NAMES)
  source = sources.FolderSource(str(folder), labels)
  strict = ml_collections.ConfigDict({"num_examples": 0, "skip_bad": False})
  data = dataset.build_dataset(strict, source, PREP, labels, 0, 1)
  with pytest.raises(DataError, match="goldfish"):
    np.asarray(data.images)
  lenient = ml_collections.ConfigDict({"num_examples": 0, "skip_bad": True})
  data = dataset.build_dataset(lenient, source, PREP, labels, 0, 1)
  assert list(data.labels) == [0, 2] and list(data.ids) == [0, 2]
  assert data.skipped == ["n01443537_goldfish.JPEG"]
  assert np.asarray(data.images).shape == (2, PREP.image_size,
                                           PREP.image_size, 3)
