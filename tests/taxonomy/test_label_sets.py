"""Multi-label ground truth from every source, aligned with the examples."""

import json
import types
import os

import numpy as np
import pytest

from jaxaudit import classes
from jaxaudit.data import dataset, sources
from jaxaudit.errors import DataError, ParameterError
from jaxaudit.models.classifier import Preprocessing
from jaxaudit.taxonomy import label_sets

PREP = Preprocessing(image_size=8, resize_size=8)
IMAGENET = classes.LabelSpace.of(classes.class_names(classes.IMAGENET1K))
CIFAR = classes.LabelSpace.of(classes.CIFAR10_NAMES)


def _dataset(source, ids):
  ids = np.asarray(ids, np.int64)
  return dataset.Dataset(ids=ids, num_selected=len(source), skipped=[],
                         source=source, prep=PREP, label_space=IMAGENET)


def _folder(tmp_path, names):
  for name in names:
    (tmp_path / name).write_bytes(b"")
  return sources.FolderSource(str(tmp_path), IMAGENET)


def test_demo_sets_include_the_label():
  source = sources.DemoSource()
  data = _dataset(source, range(len(source)))
  sets = label_sets.label_sets_for(data, "auto")
  assert sets == label_sets.label_sets_for(data, "demo")
  assert len(sets) == len(source)
  assert sets[0] == [281, 282, 285]  # chelsea: tabby, tiger cat, Egyptian cat.
  for label, accepted in zip(source.labels_at(range(len(source))), sets):
    assert label in accepted


def test_real_labels_by_validation_file_name(tmp_path):
  names = ["ILSVRC2012_val_00000003.JPEG", "ILSVRC2012_val_00000001.JPEG",
           "ILSVRC2012_val_00000002.JPEG"]
  data = _dataset(_folder(tmp_path, names), [0, 1, 2])  # sorted: 1, 2, 3.
  sets = label_sets.label_sets_for(data, "auto")
  assert sets == [[], [795, 970], [230, 231]]
  assert label_sets.label_sets_for(data, "real", ids=np.array([2])) == [[230,
                                                                        231]]


def test_imagenet_sample_names_get_no_real_labels(tmp_path):
  data = _dataset(_folder(tmp_path, ["n01440764_tench.JPEG"]), [0])
  assert label_sets.label_sets_for(data, "auto") is None
  assert label_sets.label_sets_for(data, "none") is None
  with pytest.raises(ParameterError, match="multilabel: 'real' does not apply"):
    label_sets.label_sets_for(data, "real")
  with pytest.raises(ParameterError, match="multilabel: 'demo' does not apply"):
    label_sets.label_sets_for(data, "demo")
  with pytest.raises(ParameterError, match="unknown 'reel'"):
    label_sets.label_sets_for(data, "reel")


def test_user_json_and_csv(tmp_path):
  data = _dataset(_folder(tmp_path, ["a.png", "b.png", "c.png"]), [0, 1, 2])
  path = tmp_path / "sets.json"
  path.write_text(json.dumps({"a.png": [3, "n01440764"], "1": ["tabby"]}))
  assert label_sets.label_sets_for(data, str(path)) == [[0, 3], [281], []]
  csv_path = tmp_path / "sets.csv"
  csv_path.write_text("key,labels\nc.png,5;tench 7\n")
  assert label_sets.label_sets_for(data, str(csv_path)) == [[], [], [0, 5, 7]]
  path.write_text(json.dumps({"a.png": ["no such class"]}))
  with pytest.raises(DataError, match="unknown class 'no such class'"):
    label_sets.label_sets_for(data, str(path))
  path.write_text(json.dumps({"zzz.png": [1]}))
  with pytest.raises(DataError, match="lists none of the examples"):
    label_sets.label_sets_for(data, str(path))
  with pytest.raises(ParameterError, match="no such file"):
    label_sets.label_sets_for(data, os.path.join(tmp_path, "missing.json"))


def test_cifar_label_space_has_no_imagenet_sources(tmp_path):
  data = _dataset(sources.DemoSource(), [0])
  assert label_sets.label_sets_for(data, "auto",
                                   labels=CIFAR) is None


def test_a_context_brings_its_label_space():
  data = _dataset(sources.DemoSource(), [0, 1])
  ctx = types.SimpleNamespace(data=data, labels=CIFAR)
  assert label_sets.label_sets_for(ctx, "auto") is None
  ctx.labels = IMAGENET
  assert label_sets.label_sets_for(ctx, "auto")[1] == [504, 967, 968]
