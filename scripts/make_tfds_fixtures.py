"""Writes the TFDS dataset the TFDS-source tests read, in both file formats.

  /work/tfvenv/bin/python scripts/make_tfds_fixtures.py

Run with TensorFlow 2.21.0 (tensorflow-cpu), tensorflow-datasets 4.9.10 and
array_record 0.8.6 installed (plus numpy, pillow and scikit-learn, for
`jaxaudit.data.digits`); see `scripts/tfds_builder.py` for the environment.
jaxaudit itself reads the result without TensorFlow.

`jaxaudit_digits` holds the first 48 test digits of `jaxaudit.data.digits`
(16 x 16 RGB PNGs, labels "zero" ... "nine", file names `digit_<i>.png`), one
"test" split in one shard, prepared by TFDS's own `download_and_prepare` twice:
into `tests/fixtures/tfds/array_record/` (read by `TfdsSource`) and
`tests/fixtures/tfds/tfrecord/` (refused with a `tfds convert_format` command).
"""

import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from jaxaudit.data import digits  # pylint: disable=g-import-not-at-top,wrong-import-position
from scripts import tfds_builder  # pylint: disable=g-import-not-at-top,wrong-import-position

NAME = "jaxaudit_digits"
NUM_EXAMPLES = 48
FILE_FORMATS = ("array_record", "tfrecord")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "tfds")


def file_name(index: int) -> str:
  """The `file_name` feature of example `index`."""
  return f"digit_{index:03d}.png"


def main() -> None:
  images, labels = digits.digit_images("test")
  examples = [(images[i], int(labels[i]), file_name(i))
              for i in range(NUM_EXAMPLES)]
  for file_format in FILE_FORMATS:
    data_dir = os.path.join(FIXTURES, file_format)
    shutil.rmtree(data_dir, ignore_errors=True)
    folder = tfds_builder.prepare(
        data_dir, NAME, examples, digits.CLASS_NAMES,
        (digits.SIZE, digits.SIZE, 3), split="test", encoding_format="png",
        file_format=file_format)
    print(folder)


if __name__ == "__main__":
  main()
