"""scikit-learn's handwritten digits as 16 x 16 RGB images: real data that ships
inside a core dependency, so the test model and the quick audits run offline.

The 1,797 8 x 8 scans (16 grey levels) are upsampled 2x by pixel repetition and
repeated over three channels. The first 1,297 are the "train" split, the last
500 the "test" split (the order scikit-learn ships, fixed).
"""

from __future__ import annotations

import functools

import numpy as np

from jaxaudit.errors import ConfigError

CLASS_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven",
               "eight", "nine")
SIZE = 16
NUM_TEST = 500
SPLITS = ("train", "test")


@functools.cache
def _all_digits() -> tuple[np.ndarray, np.ndarray]:
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  data = load_digits()
  grey = np.kron(data.images / 16.0, np.ones((2, 2)))  # [1797, 16, 16]
  images = np.round(grey * 255).astype(np.uint8)[..., None].repeat(3, -1)
  images.setflags(write=False)
  labels = data.target.astype(np.int64)
  labels.setflags(write=False)
  return images, labels


def digit_images(split: str) -> tuple[np.ndarray, np.ndarray]:
  """A split of the digits.

  Args:
    split: "train" (the first 1,297) or "test" (the last 500).

  Returns:
    (images uint8 [N, 16, 16, 3], labels int64 [N]), read-only.

  Raises:
    ConfigError: an unknown split, naming `config.data.split`.
  """
  if split not in SPLITS:
    raise ConfigError(f"config.data.split: the digits have splits "
                      f"{', '.join(SPLITS)}; got '{split}'")
  images, labels = _all_digits()
  rows = slice(None, -NUM_TEST) if split == "train" else slice(-NUM_TEST, None)
  return images[rows], labels[rows]
