"""`jaxaudit.audit` on a user's own model: the same summary as the command line.

A Flax module defined in a file outside the repository, with 7 classes whose
names are not ImageNet's, trained on real digits, is audited with every stage
from the command line (`--config.model.name=/some/dir/mymodel.py:make`) and
through `jaxaudit.audit`; the two summary.json files are equal.
"""

import json
import os

import flax.serialization
import jax
import ml_collections
import numpy as np
import pandas as pd
import pytest

from conftest import run_job, without_timing
import user_model
import jaxaudit
from jaxaudit.data import digits as digits_data
from jaxaudit.errors import ConfigError
from jaxaudit.models import factory, load_model

ALL_STAGES = "evaluate,attack,mistakes,explain,criticism,sis"
# Small settings for every stage, as dotted config fields (both entry points).
SMALL = {
    "batch_size": 32, "attack.attacks": "fgsm,pgd_linf,deepfool",
    "attack.deepfool.steps": 3, "attack.deepfool.candidates": 3,
    "explain.ig.steps": 8, "explain.ig.chunk": 4, "explain.ig.probes": 0,
    "explain.batch_size": 16, "explain.faithfulness.steps": 4,
    "explain.smoothgrad.samples": 2, "criticism.num_prototypes": 2,
    "criticism.num_criticisms": 2, "sis.random_seeds": 1,
    "resume.shard_size": 0,
}


@pytest.fixture(scope="module")
def user_job(tmp_path_factory):
  """The model file and a trained checkpoint outside the repository, and the
  audited digits as arrays and as an .npz."""
  folder = tmp_path_factory.mktemp("outside")
  path = user_model.write(folder)
  spec = factory.load_factory(f"{path}:classifier")
  classifier = spec()
  train_x, train_y = user_model.digits(600)
  params, losses = user_model.train(
      classifier, classifier.init_fn(jax.random.key(0)),
      train_x, train_y)
  assert losses[-1] < 0.3 * losses[0]
  checkpoint = folder / "digitnet.msgpack"
  checkpoint.write_bytes(flax.serialization.to_bytes(params))
  images, labels = user_model.digits(70, offset=600)
  npz = folder / "digits.npz"
  np.savez(npz, images=images, labels=labels,
           files=[f"images[{i}]" for i in range(len(images))])
  return {"path": path, "classifier": classifier, "params": params,
          "checkpoint": str(checkpoint), "images": images, "labels": labels,
          "npz": str(npz)}


def test_cli_and_python_api_give_the_same_summary(user_job, tmp_path):
  cli_dir, api_dir = tmp_path / "cli", tmp_path / "api"
  args = [f"--config.{k}={v}" for k, v in SMALL.items()]
  result = run_job(["--config=configs/default.py", f"--workdir={cli_dir}",
                    f"--config.stages={ALL_STAGES}",
                    f"--config.model.name={user_job['path']}:make",
                    f"--config.model.checkpoint={user_job['checkpoint']}",
                    f"--config.data.npz={user_job['npz']}", *args],
                   timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  cli = json.loads((cli_dir / "summary.json").read_text())
  api = jaxaudit.audit(user_job["classifier"], user_job["params"],
                       images=user_job["images"], labels=user_job["labels"],
                       stages=ALL_STAGES, workdir=str(api_dir), **SMALL)
  assert without_timing(api.summary) == without_timing(cli)
  assert set(cli) == set(ALL_STAGES.split(","))
  evaluate = cli["evaluate"]
  assert evaluate["num_examples"] == 70 and evaluate["top1"] > 0.7
  assert set(evaluate["per_class_accuracy"]) <= set(
      ("zero", "one", "two", "three", "four", "five", "six"))
  # No taxonomy for this label set: the stages say so instead of failing.
  assert any("no taxonomy" in n for n in cli["mistakes"]["notes"])
  assert any("no taxonomy" in n for n in cli["attack"]["notes"])
  assert cli["criticism"]["prototypes"]
  records = api.records("evaluate")
  assert isinstance(records, pd.DataFrame) and len(records) == 70
  assert set(records["prediction_name"]) <= set(evaluate["per_class_accuracy"])
  assert os.path.isfile(api.report_path)


def test_a_model_without_features_skips_what_needs_them(user_job, tmp_path):
  base = user_job["classifier"]
  logits_only = jaxaudit.Classifier(
      apply_fn=lambda p, x: base.apply_fn(p, x)[0], input_size=16,
      class_names=base.class_names, normalization=base.normalization)
  result = jaxaudit.audit(
      logits_only, user_job["params"], images=user_job["images"][:20],
      labels=user_job["labels"][:20], stages="evaluate,explain,criticism",
      workdir=str(tmp_path), **{**SMALL, "explain.methods": "saliency"})
  assert "no features" in result.summary["criticism"]["skipped"]
  assert any("no features" in n for n in result.summary["explain"]["notes"])
  assert result.summary["evaluate"]["num_examples"] == 20


def test_api_refuses_unknown_fields_and_missing_params(user_job):
  with pytest.raises(ConfigError, match="config.attack.nope"):
    jaxaudit.audit(user_job["classifier"], user_job["params"],
                   images=user_job["images"][:4], **{"attack.nope": 1})
  with pytest.raises(ConfigError, match="params"):
    jaxaudit.audit(user_job["classifier"], images=user_job["images"][:4])


def test_criticism_of_a_subset_of_the_classes(user_job, tmp_path):
  """Groups are the classes present: a job over 3 of the 7 classes."""
  keep = user_job["labels"] < 3
  result = jaxaudit.audit(
      user_job["classifier"], user_job["params"],
      images=user_job["images"][keep], labels=user_job["labels"][keep],
      stages="evaluate,criticism", workdir=str(tmp_path),
      **{**SMALL, "criticism.group_by": "true_class",
         "criticism.min_group_size": 2})
  assert set(result.summary["criticism"]["prototypes"]) == {"zero", "one",
                                                            "two"}


def test_several_models_in_memory_compared_per_example(tmp_path):
  """`audit(models=...)`: two digits CNNs given in memory and their ensemble on
  real digits; each model's records and the joined records come back, and
  each model's top-1 is its own forward pass."""
  early = load_model(ml_collections.ConfigDict({"name": "digits_cnn_early"}))
  shipped = load_model(ml_collections.ConfigDict({"name": "digits_cnn"}))
  images, labels = digits_data.digit_images("test")
  images, labels = images[:48], labels[:48]
  result = jaxaudit.audit(models={"early": early, "shipped": shipped},
                          ensemble={"members": "early,shipped"},
                          images=images, labels=labels, stages="evaluate",
                          workdir=str(tmp_path / "run"))
  assert set(result.summary["models"]) == {"early", "shipped", "ensemble"}
  joined = result.records("compare")
  for name, (classifier, params) in (("early", early), ("shipped", shipped)):
    predicted = np.asarray(jax.jit(classifier.logits)(
        params, images.astype(np.float32) / 255)).argmax(-1)
    own = result.records("evaluate", model=name).sort_values("id")
    np.testing.assert_array_equal(own["prediction"], predicted)
    np.testing.assert_array_equal(
        joined.sort_values("id")[f"{name}_correct"], predicted == labels)
  with pytest.raises(ValueError, match="model 'early'"):
    result.records("attack", model="early")
  with pytest.raises(ConfigError, match="classifier or models"):
    jaxaudit.audit(*early, models={"shipped": shipped}, images=images,
                   labels=labels)
