"""Data on a non-local file system (fsspec's `memory://`, which cannot be
memory-mapped): a folder of images and an .npz read like their local copies."""

import fsspec
import ml_collections
import numpy as np
from PIL import Image
import pytest

from digits_model import digits_npz
from jaxaudit import classes
from jaxaudit.data import dataset, digits, sources
from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import Preprocessing

PREP = Preprocessing(image_size=16, resize_size=16)
DIGITS = classes.LabelSpace.of(digits.CLASS_NAMES)


@pytest.fixture
def memory():
  fs = fsspec.filesystem("memory")
  yield fs
  fs.rm("/remote", recursive=True)


def test_folder_on_a_remote_store_reads_like_the_local_one(tmp_path, memory):
  images, labels = digits.digit_images("test")
  for i in range(12):
    name = f"{digits.CLASS_NAMES[labels[i]]}/digit-{i:02d}.png"
    (tmp_path / name).parent.mkdir(exist_ok=True)
    Image.fromarray(images[i]).save(tmp_path / name)
    memory.pipe(f"/remote/folder/{name}", (tmp_path / name).read_bytes())
  local = sources.FolderSource(str(tmp_path), DIGITS)
  remote = sources.FolderSource("memory://remote/folder", DIGITS)
  every = np.arange(len(local))
  assert len(remote) == len(local) == 12
  assert remote.files_at(every) == local.files_at(every)
  np.testing.assert_array_equal(remote.labels_at(every), local.labels_at(every))
  for i in (0, 5, 11):
    np.testing.assert_array_equal(remote.load(i, PREP), local.load(i, PREP))
  with pytest.raises(ConfigError, match="config.data.dir"):
    sources.FolderSource("memory://remote/absent", DIGITS)


def test_npz_on_a_remote_store_reads_rows_like_the_local_one(tmp_path, memory):
  path = digits_npz(tmp_path, n=40)
  with open(path, "rb") as f:
    memory.pipe("/remote/digits-test.npz", f.read())
  local = sources.NpzSource(path)
  remote = sources.NpzSource("memory://remote/digits-test.npz")
  config = ml_collections.ConfigDict({"num_examples": 0, "decode_threads": 2})
  a = dataset.build_dataset(config, local, PREP, DIGITS, 1, 2)
  b = dataset.build_dataset(config, remote, PREP, DIGITS, 1, 2)
  np.testing.assert_array_equal(a.ids, np.arange(20, 40))
  np.testing.assert_array_equal(a.ids, b.ids)
  np.testing.assert_array_equal(a.labels, b.labels)
  assert list(a.files) == list(b.files)
  np.testing.assert_array_equal(np.asarray(a.images), np.asarray(b.images))
  np.testing.assert_array_equal(b.fetch(np.array([3, 39])),
                                a.fetch(np.array([3, 39])))
