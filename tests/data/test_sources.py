"""Sources: ImageNet-named folders, class subfolders, npz, TFDS, the demo."""

import ml_collections
import numpy as np
from PIL import Image
import pytest

from digits_model import model_and_params
from jaxaudit import classes
from jaxaudit import job_config
from jaxaudit import pipeline
from jaxaudit import sharding
from jaxaudit.data import dataset, digits, sources
from jaxaudit.errors import ConfigError, DataError
from jaxaudit.models.classifier import Preprocessing

PREP = Preprocessing(image_size=32, resize_size=32)
IMAGENET = classes.LabelSpace.of(classes.class_names(classes.IMAGENET1K))


def _write(path):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.full((40, 50, 3), 100, np.uint8)).save(path)


def test_imagenet_names_give_sorted_wnid_index(tmp_path):
  _write(tmp_path / "n15075141_toilet_tissue.JPEG")
  _write(tmp_path / "n01440764_tench.JPEG")
  source = sources.FolderSource(str(tmp_path), IMAGENET)
  assert source.files_at([0, 1]) == ["n01440764_tench.JPEG",
                                     "n15075141_toilet_tissue.JPEG"]
  assert list(source.labels_at([0, 1])) == [0, 999]


def test_class_named_subfolders(tmp_path):
  _write(tmp_path / "n01443537" / "a.jpg")
  _write(tmp_path / "tabby" / "b.png")
  _write(tmp_path / "great_white_shark" / "c.jpg")
  _write(tmp_path / "not_a_class" / "d.jpg")
  source = sources.FolderSource(str(tmp_path), IMAGENET)
  every = np.arange(len(source))
  labels = dict(zip(source.files_at(every), source.labels_at(every)))
  assert labels["n01443537/a.jpg"] == 1
  assert labels["tabby/b.png"] == 281
  assert labels["great_white_shark/c.jpg"] == 2
  assert labels["not_a_class/d.jpg"] == -1


def test_missing_or_empty_folder_names_the_field(tmp_path):
  with pytest.raises(ConfigError, match="config.data.dir"):
    sources.FolderSource(str(tmp_path / "absent"), IMAGENET)
  with pytest.raises(DataError, match="no images"):
    sources.FolderSource(str(tmp_path), IMAGENET)


def test_npz_validation(tmp_path):
  np.savez(tmp_path / "ok.npz", images=np.zeros((3, 32, 32, 3), np.uint8),
           labels=np.arange(3))
  assert list(sources.NpzSource(str(tmp_path / "ok.npz")).labels_at(
      [0, 1, 2])) == [0, 1, 2]
  np.savez(tmp_path / "bad.npz", images=np.zeros((3, 32, 32), np.float32),
           labels=np.arange(3))
  with pytest.raises(DataError, match="bad.npz"):
    sources.NpzSource(str(tmp_path / "bad.npz"))
  np.savez(tmp_path / "nolabels.npz", images=np.zeros((3, 32, 32, 3), np.uint8))
  with pytest.raises(DataError, match="labels"):
    sources.NpzSource(str(tmp_path / "nolabels.npz"))


def test_only_one_source_field():
  config = ml_collections.ConfigDict({"dir": "a", "npz": "b", "tfds_name": ""})
  with pytest.raises(ConfigError, match="only one"):
    sources.build_source(config, IMAGENET)


def test_process_slices_cover_every_example_once():
  for n in (0, 1, 7, 10, 1001):
    for count in (1, 2, 3, 8):
      covered = []
      for p in range(count):
        start, stop = sharding.process_slice(n, p, count)
        covered += list(range(start, stop))
      assert covered == list(range(n))


def test_first_n_then_process_split(tmp_path):
  np.savez(tmp_path / "d.npz", images=np.zeros((10, 32, 32, 3), np.uint8),
           labels=np.arange(10))
  source = sources.NpzSource(str(tmp_path / "d.npz"))
  config = ml_collections.ConfigDict({"num_examples": 7})
  labels = classes.LabelSpace.of(classes.numbered_names(10))
  parts = [dataset.build_dataset(config, source, PREP, labels, p, 2)
           for p in range(2)]
  assert [list(d.ids) for d in parts] == [[0, 1, 2, 3], [4, 5, 6]]
  assert parts[1].num_selected == 7
  with pytest.raises(ConfigError, match="num_examples"):
    dataset.build_dataset(ml_collections.ConfigDict({"num_examples": -1}),
                          source, PREP, labels, 0, 1)




def test_a_users_source_is_not_changed_by_a_job(tmp_path):
  """The data's own classes (digits named in reverse order) are mapped onto
  the model's by name when read; the user's `ArraySource` keeps its labels
  and class names."""
  images, labels = digits.digit_images("test")
  reversed_names = tuple(reversed(digits.CLASS_NAMES))
  user_labels = 9 - labels[:40]  # The same digits, in the reversed naming.
  source = sources.ArraySource(images[:40], user_labels,
                               class_names=reversed_names)
  config = job_config.base_config()
  config.stages = "evaluate"
  config.batch_size = 20
  summary = pipeline.run(config, str(tmp_path), model=model_and_params(),
                         source=source)
  assert summary["evaluate"]["top1"] > 0.9  # Labels mapped by name.
  np.testing.assert_array_equal(source.labels, user_labels)
  assert source.class_names == reversed_names
