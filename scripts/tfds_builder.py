"""Real TFDS datasets written by TFDS's own builder, for tests and benchmarks.

Needs TensorFlow (TFDS encodes images and writes TFRecord through it), so run
it from a separate environment (versions used: Python 3.11, tensorflow-cpu
2.21.0, tensorflow-datasets 4.9.10, array_record 0.8.6):

  python3 -m venv /work/tfvenv
  /work/tfvenv/bin/pip install tensorflow-cpu tensorflow-datasets==4.9.10 \
      array_record importlib_resources pillow numpy scikit-learn

(`tfds convert_format`, TFDS's CLI, also needs apache-beam and mlcroissant.)

`prepare` runs `download_and_prepare` of a one-split image classification
builder (features `image`, `label` as a `ClassLabel`, `file_name`) in either
file format; `prepare_synthetic` fills it with ImageNet-sized random JPEGs for
the data-loading benchmark. jaxaudit reads the result without TensorFlow
(`jaxaudit.data.tfds_source`).
"""

from __future__ import annotations

import tempfile
from typing import Iterable, Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

VERSION = "1.0.0"
# (image uint8 [H, W, 3], label, file name): one example as `prepare` takes it.
Example = tuple[np.ndarray, int, str]


class _ImageClassification(tfds.core.GeneratorBasedBuilder,
                           skip_registration=True):
  """One split of (image, label, file_name) examples given at construction.

  `prepare` makes a subclass per dataset name (TFDS names a dataset's folder
  after its builder class's `name`), so this class is never prepared itself.
  """

  VERSION = tfds.core.Version(VERSION)

  def __init__(self, *, examples: Iterable[Example], class_names: Sequence[str],
               split: str, image_shape: tuple[int, int, int],
               encoding_format: str, **kwargs):
    self._examples = examples
    self._class_names = list(class_names)
    self._split = split
    self._image_shape = image_shape
    self._encoding_format = encoding_format
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=self._image_shape,
                                         encoding_format=self._encoding_format),
            "label": tfds.features.ClassLabel(names=self._class_names),
            "file_name": tfds.features.Text(),
        }),
        supervised_keys=("image", "label"),
        disable_shuffling=True,  # Record i is the i-th example given.
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the examples are given.
    return {self._split: self._generate_examples()}

  def _generate_examples(self) -> Iterator[tuple[int, dict]]:
    for i, (image, label, file_name) in enumerate(self._examples):
      yield i, {"image": np.asarray(image, np.uint8), "label": int(label),
                "file_name": file_name}


def prepare(data_dir: str, name: str, examples: Iterable[Example],
            class_names: Sequence[str], image_shape: tuple[int, int, int], *,
            split: str = "test", encoding_format: str = "png",
            file_format: str = "array_record",
            num_shards: int | None = 1, version: str = VERSION) -> str:
  """Writes a dataset with TFDS's `download_and_prepare`.

  Args:
    data_dir: the TFDS data_dir root; the dataset lands in
      `<data_dir>/<name>/<version>/`.
    name: the dataset's name (snake_case), what `tfds.data_source` is given.
    examples: (image uint8 `image_shape`, label indexing `class_names`,
      file name) per example, in the split's order; iterated once.
    class_names: the `label` feature's names.
    image_shape: (H, W, 3) of every image.
    split: the one split's name.
    encoding_format: "png" or "jpeg", how TFDS encodes the images.
    file_format: "array_record" or "tfrecord".
    num_shards: shards per split (None: TFDS's default sizes, 64 MiB - 1 GiB).
    version: the dataset's version (a TFDS dataset's own, to stand in for
      it: TFDS reads a registered dataset's folder of its current version).

  Returns:
    The prepared version folder, `<data_dir>/<name>/<version>`.
  """
  class_name = "".join(part.title() for part in name.split("_"))
  builder_cls = type(class_name, (_ImageClassification,),
                     {"name": name, "__module__": __name__,
                      "VERSION": tfds.core.Version(version)},
                     skip_registration=True)
  builder = builder_cls(
      examples=examples, class_names=class_names, split=split,
      image_shape=tuple(image_shape), encoding_format=encoding_format,
      data_dir=data_dir, file_format=file_format)
  with tempfile.TemporaryDirectory() as downloads:  # Nothing is downloaded.
    builder.download_and_prepare(
        download_dir=downloads,
        download_config=tfds.download.DownloadConfig(num_shards=num_shards))
  return str(builder.data_dir)


def synthetic_examples(num_examples: int, image_size: int, num_classes: int,
                       seed: int = 0) -> Iterator[Example]:
  """Smooth random colour fields plus noise, so the JPEGs are photo-sized.

  Yields:
    (image uint8 [image_size, image_size, 3], label `i % num_classes`,
    file name `synthetic_<i>.JPEG`), `num_examples` of them, one at a time
    so a large benchmark split never sits in memory.
  """
  rng = np.random.default_rng(seed)
  ramp = np.linspace(0.0, 1.0, image_size)
  for i in range(num_examples):
    corners = rng.uniform(0, 255, (2, 2, 3))
    top = np.outer(1 - ramp, corners[0, 0]) + np.outer(ramp, corners[0, 1])
    bottom = np.outer(1 - ramp, corners[1, 0]) + np.outer(ramp, corners[1, 1])
    field = ((1 - ramp)[:, None, None] * top[None]
             + ramp[:, None, None] * bottom[None])
    noise = rng.normal(0, 24, (image_size, image_size, 3))
    image = np.clip(field + noise, 0, 255).astype(np.uint8)
    yield image, i % num_classes, f"synthetic_{i:08d}.JPEG"


def prepare_synthetic(data_dir: str, num_examples: int = 1000,
                      image_size: int = 224, num_classes: int = 1000,
                      file_format: str = "array_record",
                      name: str = "jaxaudit_synthetic", seed: int = 0) -> str:
  """Writes an ImageNet-like "validation" split of random JPEGs (benchmarks).

  Args:
    data_dir: the TFDS data_dir root.
    num_examples: examples in the split.
    image_size: the images' side, pixels.
    num_classes: classes `class_0000` ...; example `i` has label
      `i % num_classes`.
    file_format: "array_record" or "tfrecord".
    name: the dataset's name.
    seed: the images' random seed.

  Returns:
    The prepared version folder, `<data_dir>/<name>/1.0.0`.
  """
  examples = synthetic_examples(num_examples, image_size, num_classes, seed)
  return prepare(data_dir, name, examples,
                 [f"class_{k:04d}" for k in range(num_classes)],
                 (image_size, image_size, 3), split="validation",
                 encoding_format="jpeg", file_format=file_format,
                 num_shards=None)
