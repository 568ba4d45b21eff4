"""Writes the stand-in ImageNet-R the natural-shift tests read.

  /work/tfvenv/bin/python scripts/make_natural_shift_fixture.py

Same environment as `scripts/make_tfds_fixtures.py` (TensorFlow writes it;
jaxaudit reads it without). `imagenet_r` at TFDS's version of ImageNet-R
(0.2.0), with its features (a JPEG `image` of any size, `label` over the
1000 ImageNet wnids, `file_name`) and its one split, "test", holds 8 real
photographs of two of ImageNet-R's 200 classes, from scikit-image: the cat
(tabby, n02123045) and the cup of coffee (espresso, n07920052), each whole,
mirrored and two crops. TFDS's own `imagenet_r` builder reads it as it reads
the real set.
"""

import os
import shutil
import sys

import numpy as np
import skimage.data
from tensorflow_datasets.datasets.imagenet2012 import imagenet_common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from scripts import tfds_builder  # pylint: disable=g-import-not-at-top,wrong-import-position

NAME = "imagenet_r"
VERSION = "0.2.0"
FOLDER = os.path.join(ROOT, "tests", "fixtures", "tfds", "natural")
PHOTOS = (("chelsea", "n02123045"), ("coffee", "n07920052"))


def _variants(image: np.ndarray) -> list[np.ndarray]:
  """The photograph, mirrored, and its left and right three quarters."""
  width = image.shape[1]
  return [image, image[:, ::-1], image[:, :3 * width // 4],
          image[:, width // 4:]]


def main() -> None:
  # TFDS's own label names of ImageNet-R (the 1000 wnids, sorted).
  with open(imagenet_common.label_names_file()) as f:
    wnids = f.read().split()
  examples = []
  for photo, wnid in PHOTOS:
    image = getattr(skimage.data, photo)()
    for k, variant in enumerate(_variants(image)):
      examples.append((np.ascontiguousarray(variant), wnids.index(wnid),
                       f"{wnid}/{photo}_{k}.jpg"))
  shutil.rmtree(FOLDER, ignore_errors=True)
  print(tfds_builder.prepare(FOLDER, NAME, examples, wnids, (None, None, 3),
                             split="test", encoding_format="jpeg",
                             version=VERSION))


if __name__ == "__main__":
  main()
