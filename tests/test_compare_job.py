"""Two models and their ensemble in one job (`configs/digits_compare.py:fast`:
the shipped digits CNN, an early checkpoint of it and their mean-probability
ensemble, every stage, 64 real test digits), and the comparison checked
against each model's own records and artifacts, recomputed here."""

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pandas as pd
import pytest

from conftest import assert_same_summary, run_job
import jaxaudit
from jaxaudit import artifacts
from jaxaudit.data import digits as digits_data
from jaxaudit.models import load_model
from jaxaudit.models.ensemble import make_ensemble

ARGS = ["--config=configs/digits_compare.py:fast"]
MODELS = ("early", "shipped", "ensemble")
STAGES = {"evaluate", "attack", "mistakes", "explain", "criticism", "sis"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  folder = tmp_path_factory.mktemp("compare")
  result = run_job(ARGS + [f"--workdir={folder}"])
  assert result.returncode == 0, result.stderr[-3000:]
  return folder


@pytest.fixture(scope="module")
def summary(workdir):
  return json.loads((workdir / "summary.json").read_text())


def _records(workdir, stage, model=None):
  folder = workdir / "records" / stage if model is None else (
      workdir / "models" / model / "records" / stage)
  return pd.read_parquet(folder).sort_values("id").reset_index(drop=True)


def _models():
  early = load_model(ml_collections.ConfigDict({"name": "digits_cnn_early"}))
  shipped = load_model(ml_collections.ConfigDict({"name": "digits_cnn"}))
  ensemble = make_ensemble([early, shipped])
  return {"early": early, "shipped": shipped, "ensemble": ensemble}


def _predict(model, images):
  classifier, params = model
  return np.asarray(jnp.argmax(
      jax.jit(classifier.logits)(params, jnp.asarray(images, jnp.float32)), -1))


def test_every_model_runs_every_stage_into_its_own_folder(workdir, summary):
  assert set(summary) == {"models", "compare"}
  assert set(summary["models"]) == set(MODELS)
  for name in MODELS:
    assert set(summary["models"][name]) == STAGES
    own = json.loads((workdir / "models" / name / "summary.json").read_text())
    assert own == summary["models"][name]
    own_page = (workdir / "models" / name / "report.html").read_text()
    assert 'href="../../report.html"' in own_page
  assert summary["compare"]["models"] == list(MODELS)
  assert summary["compare"]["ensembles"] == {"ensemble": ["early", "shipped"]}
  page = (workdir / "report.html").read_text()
  for name in MODELS:
    assert f'href="models/{name}/report.html"' in page
  for title in ("Side by side", "Right and wrong, per pair",
                "Adversarial transfer", "SIS overlap", "shipped right, early "
                "wrong"):
    assert title in page


def test_a_model_in_the_set_matches_its_own_single_run(workdir, summary,
                                                      tmp_path):
  """The shipped model's evaluate and attack numbers are those of
  `configs/digits.py` run on it alone with the same settings."""
  single = tmp_path / "single"
  result = run_job(["--config=configs/digits.py:fast", f"--workdir={single}",
                    "--config.stages=evaluate,attack",
                    "--config.attack.attacks=pgd_linf,deepfool",
                    "--config.attack.pgd_linf.steps=5",
                    "--config.attack.deepfool.steps=10"])
  assert result.returncode == 0, result.stderr[-3000:]
  alone = json.loads((single / "summary.json").read_text())
  for stage in ("evaluate", "attack"):
    assert_same_summary(summary["models"]["shipped"][stage], alone[stage],
                        stage)


def test_records_join_every_model_per_example(workdir, summary):
  joined = _records(workdir, "compare")
  assert list(joined["id"]) == list(range(64))
  for name in MODELS:
    own = _records(workdir, "evaluate", name)
    np.testing.assert_array_equal(joined[f"{name}_prediction"],
                                  own["prediction"])
    np.testing.assert_array_equal(joined[f"{name}_correct"], own["correct"])
  table = {row["metric"]: row for row in summary["compare"]["table"]}
  for name in MODELS:
    assert table["top-1"][name] == pytest.approx(
        joined[f"{name}_correct"].mean(), abs=1e-6)
    assert table["5% subset accuracy"][name] == (
        summary["models"][name]["sis"]["subset_accuracy"]["5%"])


def _mcnemar(b, c):
  n, k = b + c, min(b, c)
  return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def test_pairs_count_right_and_wrong_from_the_records(workdir, summary):
  joined = _records(workdir, "compare")
  pairs = summary["compare"]["pairs"]
  assert set(pairs) == {"early vs shipped", "early vs ensemble",
                        "shipped vs ensemble"}
  for key, got in pairs.items():
    a, b = key.split(" vs ")
    right_a, right_b = joined[f"{a}_correct"], joined[f"{b}_correct"]
    assert got["only_a"] == int((right_a & ~right_b).sum())
    assert got["only_b"] == int((~right_a & right_b).sum())
    assert got["both_right"] == int((right_a & right_b).sum())
    assert got["mcnemar_p"] == pytest.approx(
        _mcnemar(got["only_a"], got["only_b"]), abs=1e-6)
    assert got["agreement"] == pytest.approx(
        (joined[f"{a}_prediction"] == joined[f"{b}_prediction"]).mean())
  # The early checkpoint is the weaker model: it is wrong where the shipped
  # one is right, on real digits.
  assert pairs["early vs shipped"]["only_b"] > 0


def test_ensemble_is_the_mean_probability_and_its_attack_flips_it(workdir):
  models = _models()
  images, labels = digits_data.digit_images("test")
  x = images[:64].astype(np.float32) / 255
  own = _records(workdir, "evaluate", "ensemble")
  np.testing.assert_array_equal(_predict(models["ensemble"], x),
                                own["prediction"])
  ids, adversarials = artifacts.read_stored(workdir / "models" / "ensemble",
                                            "attack.adversarial.pgd_linf")
  attack = _records(workdir, "attack", "ensemble")
  largest = attack[(attack["attack"] == "pgd_linf")]
  largest = largest[largest["epsilon"] == largest["epsilon"].max()]
  largest = largest.sort_values("id")
  success = largest["success"].to_numpy() & largest["correct_before"].to_numpy()
  assert success.sum() >= 0.6 * largest["correct_before"].sum()
  predicted = _predict(models["ensemble"], adversarials)
  assert np.all(predicted[success] != labels[:64][ids[success]])


def test_transfer_is_the_target_on_the_source_adversarials(workdir, summary):
  models = _models()
  labels = digits_data.digit_images("test")[1][:64]
  joined = _records(workdir, "compare")
  for source, target in (("early", "shipped"), ("shipped", "ensemble"),
                         ("ensemble", "early")):
    ids, adversarials = artifacts.read_stored(workdir / "models" / source,
                                              "attack.adversarial.pgd_linf")
    attack = _records(workdir, "attack", source)
    attack = attack[attack["attack"] == "pgd_linf"]
    attack = attack[attack["epsilon"] == attack["epsilon"].max()]
    success = attack.sort_values("id")["success"].to_numpy()
    eligible = (success & joined[f"{source}_correct"].to_numpy()
                & joined[f"{target}_correct"].to_numpy())
    fooled = eligible & (_predict(models[target], adversarials) != labels[ids])
    got = summary["compare"]["transfer"]["pgd_linf"][f"{source} -> {target}"]
    assert got["examples"] == int(eligible.sum()) > 20
    assert got["rate"] == pytest.approx(fooled.sum() / eligible.sum(),
                                        abs=1e-6)
    column = joined[f"transfer_pgd_linf_{source}_to_{target}"].to_numpy()
    np.testing.assert_array_equal(column, np.where(eligible, fooled, -1))
  assert summary["compare"]["transfer"]["pgd_linf"]["epsilon"] == "32/255"


def test_sis_overlap_from_both_models_ranks(workdir, summary):
  joined = _records(workdir, "compare")
  masks, found = {}, {}
  for name in ("early", "shipped"):
    _, ranks = artifacts.read_stored(workdir / "models" / name, "sis.ranks")
    sis = _records(workdir, "sis", name)
    masks[name] = ranks < sis["sis_size"].to_numpy()[:, None]
    found[name] = sis["sis_found"].to_numpy()
  both = found["early"] & found["shipped"]
  a, b = masks["early"], masks["shipped"]
  iou = (a & b).sum(1) / np.maximum((a | b).sum(1), 1)
  column = joined["sis_iou_early_shipped"].to_numpy()
  np.testing.assert_allclose(column[both], iou[both], atol=1e-9)
  assert np.isnan(column[~both]).all()
  got = summary["compare"]["subset_overlap"]["early vs shipped"]
  assert got["sis_examples"] == int(both.sum()) > 10
  assert got["sis_iou_mean"] == pytest.approx(iou[both].mean(), abs=1e-6)
  # Two models trained on the same digits pick overlapping pixels far more
  # often than chance.
  assert got["top_iou_mean"] > 2 * got["chance_iou"]


def _resized(model, size):
  """The digits CNN behind a `size`-pixel input (resized to its own 16)."""
  classifier, params = model

  def apply_fn(p, x):
    x = jax.image.resize(x, x.shape[:1] + (16, 16, 3), "bilinear",
                         antialias=True)
    return classifier.apply_fn(p, x)

  return dataclasses.replace(classifier, apply_fn=apply_fn, input_size=size,
                             name=f"{classifier.name}@{size}"), params


def test_models_of_different_input_sizes(tmp_path):
  """A 16-pixel and a 24-pixel model and their ensemble on a declared
  24-pixel input: each sees the digits preprocessed its own way, transfer
  resizes the source's adversarials to the target's input, SIS overlap puts
  the 16 x 16 and 24 x 24 feature grids on the finer one, and the report
  states the ensemble's input."""
  models = _models()
  large = _resized(models["shipped"], 24)
  images, labels = digits_data.digit_images("test")
  result = jaxaudit.audit(
      models={"small": models["early"], "large": large},
      ensemble={"members": "large,small", "input_size": 24},
      images=images[:32], labels=labels[:32], stages="evaluate,attack,sis",
      workdir=str(tmp_path / "run"), batch_size=32,
      attack={"attacks": "pgd_linf",
              "pgd_linf": {"steps": 3, "epsilons": (8.0, 16.0, 32.0)}},
      sis={"step_fraction": 0.3, "min_step_fraction": 0.05})
  compare = result.summary["compare"]
  assert compare["models"] == ["large", "small", "ensemble"]
  _, ranks = artifacts.read_stored(result.workdir + "/models/large",
                                   "sis.ranks")
  assert ranks.shape == (32, 24 * 24)
  _, small_adversarials = artifacts.read_stored(
      result.workdir + "/models/small", "attack.adversarial.pgd_linf")
  assert small_adversarials.shape == (32, 16, 16, 3)
  # The large model on the small one's adversarials, resized here as the
  # comparison resizes them.
  upsized = jax.image.resize(jnp.asarray(small_adversarials), (32, 24, 24, 3),
                             "bilinear", antialias=True)
  joined = result.records("compare").sort_values("id")
  fooled = _predict(large, upsized) != labels[:32]
  column = joined["transfer_pgd_linf_small_to_large"].to_numpy()
  eligible = column >= 0
  assert eligible.sum() > 10
  np.testing.assert_array_equal(column[eligible], fooled[eligible])
  overlap = compare["subset_overlap"]["large vs small"]
  assert overlap["top_iou_mean"] > overlap["chance_iou"] > 0
  page = open(result.report_path).read()
  assert ("its 24px input goes to each member resized to its own size: "
          "large 24px, small 16px") in page
