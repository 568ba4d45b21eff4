"""The criticism stage end to end on the 500 real test digits with the shipped
digits model, and its group modes."""

import json

import ml_collections
import numpy as np
import pandas as pd
import pytest

from configs import digits as digits_config
from jaxaudit import classes
from jaxaudit import job_config
from jaxaudit import pipeline
from jaxaudit.data import digits
from jaxaudit.errors import ConfigError
from jaxaudit.stages import criticism as stage
from jaxaudit.taxonomy import superclasses


def _config(group_by, min_size=5):
  return ml_collections.ConfigDict({"criticism": {
      "group_by": group_by, "min_group_size": min_size}})


_IMAGENET = superclasses.resolve(
    "auto", classes.LabelSpace.of(classes.class_names("imagenet1k")), 7)
_CIFAR = superclasses.resolve(
    "auto", classes.LabelSpace.of(classes.CIFAR10_NAMES), 7)


def _counts(labels, num_classes=1000):
  labels = np.asarray(labels)
  return np.bincount(labels[labels >= 0], minlength=num_classes)


def test_auto_group_by():
  one_per_class = np.arange(1000)
  resolve = lambda groups, labels: stage.resolve_group_by(
      _config("auto"), groups, _counts(labels))[0]
  assert resolve(_IMAGENET, one_per_class) == "superclass"
  assert resolve(_CIFAR, np.arange(100) % 10) == "true_class"
  assert resolve(_IMAGENET, np.asarray([281, 967, 657])) == "global"
  assert resolve(None, np.full(4, -1)) == "global"
  # CIFAR-10's shipped groups: 6 superclasses, 12 images are enough for them.
  assert resolve(_CIFAR, np.arange(12) % 10) == "global"
  assert stage.resolve_group_by(_config("auto", 2), _CIFAR,
                                _counts(np.arange(12) % 10, 10))[0] == (
                                    "superclass")


def test_superclass_without_a_taxonomy_is_a_note_and_bad_names_an_error():
  group_by, notes = stage.resolve_group_by(_config("superclass"), None,
                                           _counts(np.arange(30) % 3, 3))
  assert group_by == "true_class" and "no taxonomy" in notes[0]
  config = job_config.base_config()
  config.criticism.group_by = "class"
  with pytest.raises(ConfigError, match="config.criticism.group_by"):
    stage.check_config(config, None)


def test_superclass_groups_follow_the_metaclass_map():
  labels = np.asarray([281, 282, 285, 967, -1])  # three cats, espresso, none.
  groups, names = stage.group_examples("superclass", labels, labels,
                                       ("x",) * 1000, _IMAGENET)
  assert groups[0] == groups[1] == groups[2] != groups[3] and groups[4] == -1
  assert len(names) == 100


def test_digits_job_gives_disjoint_per_class_selections(tmp_path):
  config = digits_config.get_config()
  config.stages = "evaluate,criticism"
  config.batch_size = 100
  config.criticism.num_prototypes = config.criticism.num_criticisms = 8
  summary = pipeline.run(config, str(tmp_path))["criticism"]
  assert summary["group_by"] == "true_class" and len(summary["mmd2"]) == 10
  labels = digits.digit_images("test")[1]
  for name, protos in summary["prototypes"].items():
    crits = summary["criticisms"][name]
    assert len(protos) == 8 and len(crits) == 8
    assert not set(protos) & set(crits)
    assert len({int(labels[i]) for i in protos + crits}) == 1
    assert 0 < summary["mmd2"][name] < 1
  records = pd.read_parquet(tmp_path / "records" / "criticism")
  assert len(records) == 160
  assert set(records["role"]) == {"prototype", "criticism"}
  # The first criticism of each class has the largest |witness| (its log-det
  # term is 0).
  for _, rows in records.groupby("group"):
    crit = rows[rows["role"] == "criticism"].sort_values("rank")
    assert list(crit["rank"]) == list(range(8))
    assert abs(crit["witness"].iloc[0]) == crit["witness"].abs().max() > 0
  html = (tmp_path / "report.html").read_text()
  assert "Prototypes and criticisms" in html and "criticism 8" in html
  assert json.loads((tmp_path / "summary.json").read_text())["criticism"]
