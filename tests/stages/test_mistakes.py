"""The mistakes stage: metrics on hand-made truth, and whole jobs on CIFAR
(the shipped superclasses, or a user's) and on the demo photos."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from conftest import CIFAR_DIR, ROOT, require_shared
from jaxaudit import classes, job_config, pipeline
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
  names = classes.class_names("imagenet1k")
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


def _run(config, tmp_path):
  workdir = str(tmp_path / "wd")
  summary = pipeline.run(config, workdir)
  return summary, pd.read_parquet(os.path.join(workdir, "records", "mistakes"))


def _cifar_config(tmp_path, n: int):
  """The mistakes stage of the shared ResNet-20 on the first n CIFAR images."""
  with np.load(os.path.join(require_shared(CIFAR_DIR), "test_jpeg.npz")) as z:
    np.savez(tmp_path / "c.npz", images=z["images"][:n], labels=z["labels"][:n])
  config = job_config.cifar10_config(folder=CIFAR_DIR)
  config.stages = "evaluate,mistakes"
  config.batch_size = 16
  config.data.npz = str(tmp_path / "c.npz")
  return config


def test_cifar_job_reports_only_what_applies(tmp_path):
  config = _cifar_config(tmp_path, 48)
  config.mistakes.bootstrap_samples = 100
  summary, records = _run(config, tmp_path)
  result = summary["mistakes"]
  # CIFAR-10's shipped groups are the only truth: cat/dog, deer/horse,
  # automobile/truck and airplane/ship errors are fine-grained.
  assert list(result["truth_sources"]) == ["superclass"]
  assert "CIFAR-10 groups" in result["truth_sources"]["superclass"]
  assert any("no WordNet" in n for n in result["notes"])
  assert result["num_errors"] > 0
  assert set(records["category"]) <= {"correct", "fine_grained", "real_error"}
  fine = records[records["category"] == "fine_grained"]
  pairs = {frozenset((a, b)) for a, b in zip(fine["label"], fine["prediction"])}
  assert pairs <= {frozenset(p) for p in ((3, 5), (4, 7), (1, 9), (0, 8))}
  assert result["rectified_top1"]["superclass"] >= result["top1"]["superclass"]
  assert len(records) == 48 and (records["wordnet_distance"] == -1).all()
  config.taxonomy.superclass = "metaclass"
  with pytest.raises(Exception, match="config.taxonomy.superclass"):
    _run(config, tmp_path / "again")


def test_cifar_user_superclasses(tmp_path):
  config = _cifar_config(tmp_path, 32)
  groups = tmp_path / "groups.json"
  animals = ["bird", "cat", "deer", "dog", "frog", "horse"]
  groups.write_text(json.dumps(
      {c: "animal" if c in animals else "vehicle" for c in
       ["airplane", "automobile", "ship", "truck"] + animals}))
  config.taxonomy.superclass = str(groups)
  summary, records = _run(config, tmp_path)
  result = summary["mistakes"]
  assert result["rectified_top1"]["superclass"] >= result["top1"]["superclass"]
  wrong = records[records["label"] != records["prediction"]]
  assert (wrong["category"] == np.where(wrong["same_superclass"],
                                        "fine_grained", "real_error")).all()


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
