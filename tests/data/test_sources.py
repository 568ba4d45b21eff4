"""Sources: ImageNet-named folders, class subfolders, npz, TFDS, the demo."""

import ml_collections
import numpy as np
from PIL import Image
import pytest

from jaxaudit import classes
from jaxaudit import sharding
from jaxaudit.data import dataset, sources
from jaxaudit.errors import ConfigError, DataError
from jaxaudit.models.classifier import Preprocessing

PREP = Preprocessing(image_size=32, resize_size=32)
IMAGENET_NAMES = classes.class_names(classes.IMAGENET1K)


def _write(path):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.full((40, 50, 3), 100, np.uint8)).save(path)


def test_imagenet_names_give_sorted_wnid_index(tmp_path):
  _write(tmp_path / "n15075141_toilet_tissue.JPEG")
  _write(tmp_path / "n01440764_tench.JPEG")
  source = sources.FolderSource(str(tmp_path), IMAGENET_NAMES)
  assert source.files == ["n01440764_tench.JPEG", "n15075141_toilet_tissue.JPEG"]
  assert list(source.labels) == [0, 999]


def test_class_named_subfolders(tmp_path):
  _write(tmp_path / "n01443537" / "a.jpg")
  _write(tmp_path / "tabby" / "b.png")
  _write(tmp_path / "great_white_shark" / "c.jpg")
  _write(tmp_path / "not_a_class" / "d.jpg")
  source = sources.FolderSource(str(tmp_path), IMAGENET_NAMES)
  labels = dict(zip(source.files, source.labels))
  assert labels["n01443537/a.jpg"] == 1
  assert labels["tabby/b.png"] == 281
  assert labels["great_white_shark/c.jpg"] == 2
  assert labels["not_a_class/d.jpg"] == -1


def test_missing_or_empty_folder_names_the_field(tmp_path):
  with pytest.raises(ConfigError, match="config.data.dir"):
    sources.FolderSource(str(tmp_path / "absent"), IMAGENET_NAMES)
  with pytest.raises(DataError, match="no images"):
    sources.FolderSource(str(tmp_path), IMAGENET_NAMES)


def test_npz_validation(tmp_path):
  np.savez(tmp_path / "ok.npz", images=np.zeros((3, 32, 32, 3), np.uint8),
           labels=np.arange(3))
  assert list(sources.NpzSource(str(tmp_path / "ok.npz")).labels) == [0, 1, 2]
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
    sources.build_source(config, IMAGENET_NAMES)


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
  parts = [dataset.build_dataset(config, source, PREP, p, 2) for p in range(2)]
  assert [list(d.ids) for d in parts] == [[0, 1, 2, 3], [4, 5, 6]]
  assert parts[1].num_selected == 7
  with pytest.raises(ConfigError, match="num_examples"):
    dataset.build_dataset(ml_collections.ConfigDict({"num_examples": -1}),
                          source, PREP, 0, 1)


def test_tfds_data_source_with_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=6):
    source = sources.TfdsSource("cifar10", "test", None)
    assert len(source.files) == 6
    assert source.labels.min() >= 0 and source.labels.max() < 10
    image = source.load(0, PREP)
  assert image.shape == (32, 32, 3) and image.dtype == np.uint8
