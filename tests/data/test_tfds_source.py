"""TfdsSource on a real TFDS dataset (TFDS's own builder wrote it, in both
file formats: `scripts/make_tfds_fixtures.py`); reading needs no TensorFlow.

The fixture `jaxaudit_digits` holds the first 48 test digits of
`jaxaudit.data.digits`, in order, named `digit_<i>.png`, in one shard.
"""

import collections
import os
import shutil
import subprocess

import numpy as np
import pytest

from jaxaudit import sharding
from jaxaudit.data import decode, digits
from jaxaudit.data.tfds_source import TfdsSource
from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import Preprocessing

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "fixtures", "tfds")
ARRAY_RECORD = os.path.join(FIXTURES, "array_record")
TFRECORD = os.path.join(FIXTURES, "tfrecord")
NAME = "jaxaudit_digits"
NUM_EXAMPLES = 48
PREP = Preprocessing(image_size=digits.SIZE, resize_size=digits.SIZE)


def _digits():
  images, labels = digits.digit_images("test")
  return images[:NUM_EXAMPLES], labels[:NUM_EXAMPLES]


class _RecordingReader:
  """An ArrayRecord shard reader that logs every record position it reads and
  fails on any reading method the data source is not expected to use."""

  def __init__(self, reader, log: list[int]):
    self._reader = reader
    self._log = log

  def read(self, positions):
    self._log.extend(int(p) for p in positions)
    return self._reader.read(positions)

  def writer_options_string(self) -> str:
    return self._reader.writer_options_string()

  def close(self) -> None:
    self._reader.close()

  def __getattr__(self, name):
    raise AssertionError(f"unexpected ArrayRecord reader call: {name}")


@pytest.fixture(name="reads")
def _reads(monkeypatch) -> list[int]:
  """Positions of every record read from the (one-shard) fixture, i.e. the
  split's indices, in the order read."""
  from array_record.python import array_record_data_source  # pylint: disable=g-import-not-at-top
  log = []
  create = array_record_data_source._create_reader  # pylint: disable=protected-access
  monkeypatch.setattr(array_record_data_source, "_create_reader",
                      lambda *args: _RecordingReader(create(*args), log))
  return log


def test_reads_the_digits_it_was_built_from():
  source = TfdsSource(NAME, "test", ARRAY_RECORD)
  images, labels = _digits()
  every = np.arange(NUM_EXAMPLES)
  assert len(source) == NUM_EXAMPLES
  assert source.class_names == digits.CLASS_NAMES
  np.testing.assert_array_equal(source.labels_at(every), labels)
  assert source.labels_at(every).dtype == np.int64
  assert source.files_at(every) == [f"digit_{i:03d}.png" for i in every]
  for i in every:
    np.testing.assert_array_equal(source.load(int(i), PREP), images[i])
  bigger = source.load(5, Preprocessing(image_size=24, resize_size=32))
  assert bigger.shape == (24, 24, 3) and bigger.dtype == np.uint8
  record = source.record(7)
  assert isinstance(record["image"], bytes)  # TFDS left the PNG encoded.
  assert record["label"] == labels[7]


def test_split_slices_and_unknown_splits():
  source = TfdsSource(NAME, "test[10:20]", ARRAY_RECORD)
  assert len(source) == 10
  assert source.files_at([0, 9]) == ["digit_010.png", "digit_019.png"]
  with pytest.raises(ConfigError, match=r"config\.data\.split.*'train'"):
    TfdsSource(NAME, "train", ARRAY_RECORD)
  with pytest.raises(IndexError, match="outside"):
    source.labels_at([10])


def test_tfrecord_is_refused_with_the_exact_convert_command():
  folder = os.path.join(TFRECORD, NAME, "1.0.0")
  with pytest.raises(ConfigError) as error:
    TfdsSource(NAME, "test", TFRECORD)
  message = str(error.value)
  assert "config.data.tfds_name" in message and "tfrecord" in message
  assert message.splitlines()[-1] == (
      f"  tfds convert_format --dataset_version_dir={folder} "
      "--out_file_format=array_record")


def test_tfrecord_is_refused_from_metadata_alone(tmp_path, reads):
  shutil.copytree(TFRECORD, tmp_path / "tfrecord")
  folder = tmp_path / "tfrecord" / NAME / "1.0.0"
  for shard in folder.glob("*.tfrecord-*"):
    shard.unlink()  # Nothing to read: the refusal must come from metadata.
  with pytest.raises(ConfigError, match=f"--dataset_version_dir={folder} "):
    TfdsSource(NAME, "test", str(tmp_path / "tfrecord"))
  assert not reads


def test_missing_dataset_names_the_field_and_the_build_command(tmp_path):
  with pytest.raises(ConfigError,
                     match=r"config\.data\.tfds_name.*tfds build no_such_data"):
    TfdsSource("no_such_data", "test", ARRAY_RECORD)
  with pytest.raises(ConfigError,
                     match=r"config\.data\.tfds_name.*tfds build " + NAME):
    TfdsSource(NAME, "test", str(tmp_path))


def test_missing_image_feature_names_it():
  with pytest.raises(ConfigError, match="no image feature 'photo'"):
    TfdsSource(NAME, "test", ARRAY_RECORD, image_key="photo")


def test_each_process_reads_and_decodes_only_its_slice(reads, monkeypatch):
  decoded = []
  decode_image = decode.decode_image

  def recording_decode(data, prep, name=""):
    decoded.append(name)
    return decode_image(data, prep, name)

  monkeypatch.setattr(decode, "decode_image", recording_decode)
  images, labels = _digits()
  covered = []
  for process in range(2):
    reads.clear()
    decoded.clear()
    source = TfdsSource(NAME, "test", ARRAY_RECORD)
    assert not reads, "building the source read records"
    start, stop = sharding.process_slice(len(source), process, 2)
    mine = np.arange(start, stop)
    np.testing.assert_array_equal(source.labels_at(mine), labels[start:stop])
    assert source.files_at(mine) == [f"digit_{i:03d}.png" for i in mine]
    for i in mine:
      np.testing.assert_array_equal(source.load(int(i), PREP), images[i])
    np.testing.assert_array_equal(source.labels_at(mine), labels[start:stop])
    # Each of its records read twice (labels and names once, cached; the
    # image once), none of the other process's.
    assert collections.Counter(reads) == {int(i): 2 for i in mine}
    assert decoded == [f"digit_{i:03d}.png" for i in mine]
    covered.extend(sorted(set(reads)))
  assert covered == list(range(NUM_EXAMPLES))


def test_convert_command_makes_a_readable_copy(tmp_path):
  venv = os.environ.get("JAXAUDIT_TF_VENV")
  if not venv:
    pytest.skip("set JAXAUDIT_TF_VENV to a venv with tensorflow, "
                "tensorflow-datasets, apache-beam and mlcroissant to run "
                "TFDS's converter")
  shutil.copytree(TFRECORD, tmp_path / "tfrecord")
  with pytest.raises(ConfigError) as error:
    TfdsSource(NAME, "test", str(tmp_path / "tfrecord"))
  command = str(error.value).splitlines()[-1].strip()
  env = dict(os.environ, PATH=os.path.join(venv, "bin") + os.pathsep
             + os.environ["PATH"])
  subprocess.run(command, shell=True, check=True, env=env, cwd=tmp_path,
                 capture_output=True, timeout=600)
  source = TfdsSource(NAME, "test", str(tmp_path / "tfrecord"))
  np.testing.assert_array_equal(source.labels_at(np.arange(NUM_EXAMPLES)),
                                _digits()[1])
