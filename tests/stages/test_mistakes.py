"""The mistakes stage: metrics on hand-made truth (ImageNet label sets,
CIFAR-10's shipped superclasses), whole jobs on the real digits with the shipped digits
model (no taxonomy, or a user's superclasses) and on the demo photos."""

import os

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from configs import digits as digits_config
from digits_model import group_of, write_groups
from jaxaudit import classes, pipeline
from jaxaudit.stages import mistakes
from jaxaudit.taxonomy import judgement, metaclass, superclasses


def _arrays(labels, preds):
  n = len(labels)
  return {"id": np.arange(n), "label": np.asarray(labels),
          "prediction": np.asarray(preds),
          "top1_prob": np.full(n, 0.2, np.float32)}


def test_analyse_hand_made_multi_label_set():
  superclass, _ = metaclass.imagenet_metaclasses()
  # correct, multi_object, near-duplicate, fine-grained (dogs), real error,
  # empty label set (left out of the multi-label source), unlabelled.
  arrays = _arrays([281, 281, 836, 162, 0, 5, -1],
                   [281, 282, 837, 161, 999, 5, 3])
  sets = [[281], [281, 282], [836], [162], [0], [], []]
  cfg = mistakes.default_config()
  names = classes.LabelSpace.of(classes.class_names("imagenet1k"))
  taxonomy = judgement.Taxonomy(
      names, superclasses.Superclasses(superclass, [], "metaclasses"),
      "sets.json", 4)
  summary, columns = mistakes.analyse(arrays, sets, taxonomy, cfg,
                                      np.random.default_rng(0))
  assert columns["category"].tolist() == [
      "correct", "multi_object", "near_duplicate_class", "fine_grained",
      "real_error", "correct", "unlabelled"]
  assert summary["excluded_empty_label_set"] == {"file": 1}
  assert summary["examples_per_source"] == {"file": 5, "superclass": 6}
  assert summary["top1"]["file"] == pytest.approx(1 / 5)
  assert summary["rectified_top1"]["file"] == pytest.approx(2 / 5)
  # superclass: tabby/tiger cat, sunglass/sunglasses, beagle/basset accepted.
  assert summary["rectified_top1"]["superclass"] == pytest.approx(5 / 6)
  assert summary["num_errors"] == 4
  assert sum(summary["error_categories"].values()) == pytest.approx(1.0)
  assert set(summary["error_categories"].values()) == {0.25}
  assert summary["confusions"][0]["wordnet_distance"] >= 0
  low, high = summary["confidence_intervals"]["file"]["rectified_top1"]
  assert low <= 2 / 5 <= high


def test_analyse_with_the_shipped_cifar10_groups():
  # CIFAR-10's shipped groups are the only truth there: cat/dog, deer/horse,
  # automobile/truck and airplane/ship errors are fine-grained.
  names = classes.LabelSpace.of(classes.CIFAR10_NAMES)
  taxonomy = judgement.Taxonomy(
      names, superclasses.resolve("auto", names, 7), None, 4)
  assert list(taxonomy.sources()) == ["superclass"]
  assert "CIFAR-10 groups" in taxonomy.sources()["superclass"]
  assert any("no WordNet" in n for n in taxonomy.notes())
  arrays = _arrays([3, 4, 1, 0, 2, 6, 5], [5, 7, 9, 8, 6, 6, 3])
  cfg = mistakes.default_config()
  cfg.bootstrap_samples = 100
  summary, columns = mistakes.analyse(arrays, None, taxonomy, cfg,
                                      np.random.default_rng(0))
  assert columns["category"].tolist() == ["fine_grained"] * 4 + [
      "real_error", "correct", "fine_grained"]
  assert summary["top1"]["superclass"] == pytest.approx(1 / 7)
  assert summary["rectified_top1"]["superclass"] == pytest.approx(6 / 7)
  assert (columns["wordnet_distance"] == -1).all()


def _run(config, tmp_path):
  workdir = str(tmp_path / "wd")
  summary = pipeline.run(config, workdir)
  return summary, pd.read_parquet(os.path.join(workdir, "records", "mistakes"))


def _digits_config():
  """The mistakes stage of `configs/digits.py` on all 500 test digits, 26 of
  which the model gets wrong."""
  config = digits_config.get_config()
  config.stages = "evaluate,mistakes"
  config.batch_size = 100
  config.mistakes.bootstrap_samples = 100
  return config


def test_digits_job_reports_only_what_applies(tmp_path):
  config = _digits_config()
  summary, records = _run(config, tmp_path)
  result = summary["mistakes"]
  # No taxonomy knows the digits: no truth to rectify with, every error real.
  assert result["truth_sources"] == {} and result["rectified_top1"] == {}
  assert any("no taxonomy" in n for n in result["notes"])
  assert any("no WordNet" in n for n in result["notes"])
  assert result["num_errors"] == 26
  assert result["error_categories"]["real_error"] == 1.0
  assert set(records["category"]) == {"correct", "real_error"}
  assert len(records) == 500 and (records["wordnet_distance"] == -1).all()
  config.taxonomy.superclass = "metaclass"
  with pytest.raises(Exception, match="config.taxonomy.superclass"):
    _run(config, tmp_path / "again")


def test_digits_user_superclasses(tmp_path):
  config = _digits_config()
  config.taxonomy.superclass = write_groups(tmp_path)
  summary, records = _run(config, tmp_path)
  result = summary["mistakes"]
  assert list(result["truth_sources"]) == ["superclass"]
  # Nine of the 26 errors stay within a group (e.g. nine -> three).
  assert result["rectified_top1"]["superclass"] > result["top1"]["superclass"]
  wrong = records[records["label"] != records["prediction"]]
  assert (wrong["category"] == np.where(wrong["same_superclass"],
                                        "fine_grained", "real_error")).all()
  within = [group_of(a) == group_of(b) for a, b in zip(wrong["label"],
                                                        wrong["prediction"])]
  np.testing.assert_array_equal(wrong["same_superclass"], within)
  assert set(wrong["category"]) == {"fine_grained", "real_error"}


@pytest.mark.slow
def test_demo_job(tmp_path):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      "default_config", os.path.join(ROOT, "configs", "default.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("fast")
  config.stages = "evaluate,mistakes"
  summary, records = _run(config, tmp_path)
  result = summary["mistakes"]
  assert set(result["truth_sources"]) == {"demo", "superclass"}
  for source in result["truth_sources"]:
    assert result["rectified_top1"][source] >= result["top1"][source]
  assert sum(result["error_categories"].values()) == pytest.approx(1.0)
  assert records["label_set"].map(len).min() >= 1
  assert os.path.exists(tmp_path / "wd" / "report.html")
