"""The shift stage on the first 64 real test digits with the shipped
digits model: every corruption's predictions reproducible from the example's
id alone, the summary's numbers those of the records, rectification by the
job's superclasses, flips and galleries; the same on 1 and 8 devices; and
bad settings named."""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pandas as pd
import pytest

from configs import digits as digits_config
from configs import imagenet_sample
from conftest import ROOT, assert_same_summary, run_job
import digits_model
from jaxaudit import artifacts
from jaxaudit import classes
from jaxaudit import job_config
from jaxaudit import pipeline
from jaxaudit.corruptions import spec
from jaxaudit.data import digits as digits_data
from jaxaudit.data import natural_sets
from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.sharding import example_keys
from jaxaudit.stages import shift
from jaxaudit.stages.base import stage_rng

CORRUPTIONS = "glass_blur,gaussian_noise,contrast,spatter"
NAMES = CORRUPTIONS.split(",")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
  """The digits job (64 digits, evaluate then shift, superclasses)."""
  folder = tmp_path_factory.mktemp("shift")
  config = digits_config.get_config("fast")
  config.stages = "evaluate,shift"
  config.shift.corruptions = CORRUPTIONS
  config.taxonomy.superclass = digits_model.write_groups(folder)
  workdir = folder / "job"
  summary = pipeline.run(config, str(workdir))
  records = pd.read_parquet(workdir / "records" / "shift").sort_values("id")
  return config, summary, records.reset_index(drop=True), workdir


def test_predictions_are_the_models_on_the_corrupted_images_from_the_id(job):
  """Recomputed outside the stage, from the stage key, the corruption's name
  and each digit's id only."""
  config, _, records, _ = job
  model, params = digits_model.model_and_params()
  images, _ = digits_data.digit_images("test")
  ids = records["id"].to_numpy()[:16]
  x = jnp.asarray(images[ids], jnp.float32) / 255
  rng = stage_rng(config.seed, "shift")
  for name in NAMES:
    entry = spec.CORRUPTIONS[name]
    built = jax.tree.map(jnp.asarray, entry.build(name, "cifar", 16, 16))
    keys = example_keys(shift.corruption_key(rng, name),
                        jnp.asarray(ids, jnp.int32))
    corrupted = shift.corrupted_levels(entry, built, x, keys,
                                       jnp.arange(1, 6))
    predicted = np.stack([np.asarray(jnp.argmax(
        model.logits(params, c), -1)) for c in corrupted], 1)
    want = np.stack(records[f"{name}_prediction"].to_numpy()[:16])
    np.testing.assert_array_equal(predicted, want, err_msg=name)


def test_summary_is_what_the_records_say(job):
  _, summary, records, _ = job
  got = summary["shift"]
  labels = records["label"].to_numpy()
  clean = records["clean_prediction"].to_numpy()
  groups = np.asarray([digits_model.group_of(int(l)) for l in labels])
  assert got["corruptions"] == NAMES and got["parameter_set"] == "cifar"
  for name in NAMES:
    pred = np.stack(records[f"{name}_prediction"].to_numpy())
    accepted = np.stack(records[f"{name}_accepted"].to_numpy())
    for s in range(5):
      p = pred[:, s]
      same_group = np.asarray([digits_model.group_of(int(k)) for k in p]
                              ) == groups
      np.testing.assert_array_equal(accepted[:, s], same_group)
      key = str(s + 1)
      assert got["top1"][name][key] == pytest.approx(np.mean(p == labels))
      assert got["rectified_top1"][name][key] == pytest.approx(
          np.mean((p == labels) | same_group))
      assert got["flip_rate"][name][key] == pytest.approx(np.mean(p != clean))
      assert 0 <= got["ece"][name][key] <= 1
    flipped = pred != clean[:, None]
    first = np.where(flipped.any(1), flipped.argmax(1) + 1, 0)
    np.testing.assert_array_equal(records[f"{name}_first_flip"], first)
  # Real damage: the strongest glass blur loses accuracy the clean digits had.
  assert got["top1"]["glass_blur"]["5"] < got["clean"]["top1"] - 0.2
  assert got["rectified_top1"]["glass_blur"]["5"] > got["top1"][
      "glass_blur"]["5"]
  assert "mce" not in got and "AlexNet" in got["notes"][0]
  assert list(got["timing"]["corruptions"]) == NAMES


def test_records_join_the_clean_examples_and_report_shows_flips(job):
  _, summary, records, workdir = job
  clean = pd.read_parquet(workdir / "records" / "evaluate").sort_values("id")
  np.testing.assert_array_equal(records["id"], clean["id"])
  np.testing.assert_array_equal(records["clean_prediction"],
                                clean["prediction"])
  html = (workdir / "report.html").read_text()
  assert "Shift: common corruptions" in html
  flips = summary["shift"]["flip_rate"]
  shown = [n for n in NAMES if flips[n]["1"] > 0]
  assert shown and all(f"{n}: flips at severity 1" in html for n in shown)


def test_identical_on_1_and_8_devices(tmp_path):
  summaries, records = [], []
  for devices in (1, 8):
    folder = tmp_path / f"d{devices}"
    result = run_job(["--config=configs/digits.py:fast",
                      "--config.stages=evaluate,shift",
                      "--config.data.num_examples=45",
                      f"--config.shift.corruptions={CORRUPTIONS}",
                      "--config.shift.severities=(1,4)",
                      f"--workdir={folder}"], devices=devices)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries.append(json.loads((folder / "summary.json").read_text()))
    records.append(pd.read_parquet(folder / "records" / "shift"))
  assert summaries[0]["shift"]["severities"] == [1, 4]
  assert_same_summary(summaries[1], summaries[0])
  for name in NAMES:
    np.testing.assert_array_equal(
        np.stack(records[0][f"{name}_prediction"]),
        np.stack(records[1][f"{name}_prediction"]))


def _config(**fields):
  config = ml_collections.ConfigDict({"shift": shift.default_config()})
  config.shift.update(fields)
  return config


@pytest.mark.parametrize("fields, field", [
    ({"corruptions": "gaussian_noise,fogg"}, "config.shift.corruptions.*fog"),
    ({"corruptions": ""}, "config.shift.corruptions"),
    ({"severities": (0, 3)}, "config.shift.severities"),
    ({"severities": (2, 2)}, "config.shift.severities"),
    ({"parameter_set": "tiny"}, "config.shift.parameter_set"),
    ({"calibration_bins": 0}, "config.shift.calibration_bins"),
    ({"gallery_size": -1}, "config.shift.gallery_size"),
])
def test_bad_settings_name_their_field(fields, field):
  with pytest.raises(ConfigError, match=field):
    shift.check_config(_config(**fields), ModelDims(10, None, 32))


def test_frost_that_cannot_cover_the_image_names_the_corruption():
  """CIFAR's frost crops come from photographs scaled for 32 pixels."""
  config = _config(corruptions="frost", parameter_set="cifar")
  with pytest.raises(ConfigError, match="config.shift.corruptions: frost"):
    shift.check_config(config, ModelDims(1000, None, 224))
  assert shift.parameter_set(_config(), 32) == "cifar"
  assert shift.parameter_set(_config(), 224) == "imagenet"


NATURAL = os.path.join(ROOT, "tests", "fixtures", "tfds", "natural")


@pytest.fixture(scope="module")
def natural_job(tmp_path_factory):
  """Lite0 on the stand-in ImageNet-R (scripts/make_natural_shift_fixture.py:
  8 photographs of a tabby cat and an espresso), read through TFDS both as
  the job's data and as its natural shift set."""
  config = imagenet_sample.get_config()
  config.data.dir = ""
  config.data.tfds_name = "imagenet_r"
  config.data.tfds_data_dir = NATURAL
  config.data.split = "test"
  config.stages = "evaluate,shift"
  config.batch_size = 8
  config.shift.corruptions = ""
  config.shift.natural = "imagenet_r"
  workdir = tmp_path_factory.mktemp("natural") / "job"
  return pipeline.run(config, str(workdir)), workdir


def test_natural_set_scores_among_its_200_classes(natural_job):
  summary, workdir = natural_job
  got = summary["shift"]["natural"]["imagenet_r"]
  assert got["num_examples"] == 8 and got["classes"] == 200
  mask = natural_sets.logit_mask(
      natural_sets.parse("imagenet_r")[0],
      classes.LabelSpace.of(classes.class_names("imagenet1k")))
  _, logits = artifacts.read_stored(str(workdir), "evaluate.logits")
  labels = np.repeat([281, 967], 4)  # tabby, espresso.
  restricted = np.where(mask, logits, -np.inf).argmax(1)
  assert got["top1"] == pytest.approx(np.mean(restricted == labels))
  # Lite0's own top-1 over the 1000 leaves the 200 for some photographs
  # (other cats): exactly those the restriction moves.
  unrestricted = logits.argmax(1)
  assert (~mask[unrestricted]).any()
  moved = restricted != unrestricted
  np.testing.assert_array_equal(moved, ~mask[unrestricted])
  assert summary["evaluate"]["top1"] < got["top1"]


def test_absent_natural_set_names_it_and_the_build_command():
  config = job_config.base_config()
  config.shift.natural = "imagenet_a"
  config.shift.natural_data_dir = NATURAL
  with pytest.raises(ConfigError, match=r"config.shift.natural.*imagenet_a"
                     r"(.|\n)*tfds build imagenet_a"):
    shift.check_config(config, ModelDims(1000, None, 224))
  config.shift.natural = "imagenet_r:train"
  with pytest.raises(ConfigError, match="config.shift.natural.*no split"):
    shift.check_config(config, ModelDims(1000, None, 224))
  config.shift.natural = "imagenet_r:test[:4],imagenet_r:test[:4]"
  with pytest.raises(ConfigError, match="given twice"):
    shift.check_config(config, ModelDims(1000, None, 224))
