"""The SIS stage end to end on real digits with the shipped digits model, on 1
and 8 devices."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import assert_same_summary, run_job
from configs import digits as digits_config
from configs import imagenet_sis
from digits_model import JOB_ARGS
from jaxaudit import artifacts, pipeline
from jaxaudit.data.digits import CLASS_NAMES as DIGIT_NAMES
from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.sis import bgsis
from jaxaudit.stages import sis as stage

# `configs/digits.py` overrides: the SIS stage alone on the first 12 digits.
ARGS = {"stages": "sis", "data.num_examples": 12, "batch_size": 8,
        "sis.step_fraction": 0.0, "sis.min_step_fraction": 0.1,
        "sis.gallery_size": 3, "sis.exact.num_examples": 5,
        "sis.exact.block_size": 4}


@pytest.fixture(scope="module")
def job(tmp_path_factory):
  config = digits_config.get_config()
  config.update_from_flattened_dict(ARGS)
  workdir = tmp_path_factory.mktemp("sis1")
  pipeline.run(config, str(workdir))
  return workdir


def test_summary_records_masks_and_report(job):
  summary = json.loads((job / "summary.json").read_text())["sis"]
  assert summary["threshold"] == 0.9
  assert set(summary["subset_accuracy"]) == {"5%", "10%"}
  # The top-ranked pixels keep the digit (0.83 measured at 5% and 10%); as
  # many random ones do not (0.11, 0.03), nor would a random ranking.
  for size in ("5%", "10%"):
    assert (summary["subset_accuracy"][size]
            >= summary["random_subset_accuracy"][size] + 0.5), summary
  assert 0 < summary["sis_size_median"] <= 256
  assert 0.0 <= summary["border_share_median"] <= 1.0
  records = pd.read_parquet(job / "records" / "sis")
  assert sorted(records["id"]) == list(range(12))
  # 26 pixels per step: ceil(256 / 26) = 10 steps.
  assert len(records["curve"][0]) == len(summary["curve_fractions"]) == 10
  ids, ranks = artifacts.read_stored(str(job), "sis.ranks")
  np.testing.assert_array_equal(ids, np.arange(12))
  np.testing.assert_array_equal(np.sort(ranks, 1),
                                np.tile(np.arange(256), (12, 1)))
  html = (job / "report.html").read_text()
  assert "Overinterpretation" in html and "SIS pixels only" in html
  assert "Confidence on top-ranked subsets" in html
  assert "Exact backward selection against BGSIS" in html


def test_no_sis_where_the_full_image_is_below_the_threshold(job):
  summary = json.loads((job / "summary.json").read_text())["sis"]
  records = pd.read_parquet(job / "records" / "sis").sort_values("id")
  below = records["full_confidence"] < summary["threshold"]
  assert below.any() and not below.all(), records["full_confidence"]
  np.testing.assert_array_equal(records["sis_found"], ~below)
  assert (records["sis_size"][below] == 256).all()
  assert summary["below_threshold_share"] == pytest.approx(below.mean())
  assert summary["sis_found_share"] == pytest.approx(1 - below.mean())


def test_subset_confidence_against_full_images(job):
  summary = json.loads((job / "summary.json").read_text())["sis"]
  records = pd.read_parquet(job / "records" / "sis")
  assert summary["full_confidence"] == pytest.approx(
      records["full_confidence"].mean(), rel=1e-5)
  assert summary["subset_confidence"]["5%"] == pytest.approx(
      records["subset_5pct_confidence"].mean(), rel=1e-5)
  by_class = summary["confidence_by_class"]
  assert sum(c["images"] for c in by_class.values()) == 12
  for name, c in by_class.items():
    rows = records[records["target"] == DIGIT_NAMES.index(name)]
    assert c["full"] == pytest.approx(rows["full_confidence"].mean(), rel=1e-5)
  # The top-ranked 10% keep most of the confidence (BGSIS keeps it high).
  assert summary["subset_confidence"]["10%"] > 0.5


def test_exact_comparison_on_the_first_images(job):
  comparison = json.loads(
      (job / "summary.json").read_text())["sis"]["exact_comparison"]
  assert comparison["num_examples"] == 5
  assert comparison["num_features"] == 16  # 4 x 4-pixel blocks.
  assert comparison["forward_passes_per_image"] == 136
  for method in ("exact", "bgsis"):
    assert set(comparison[method]["subset_accuracy"]) == {"5%", "10%"}
  assert 0.0 <= comparison["top_overlap"]["10%"] <= 1.0
  records = pd.read_parquet(job / "records" / "sis").sort_values("id")
  compared = records["exact_sis_size"].to_numpy() >= 0
  np.testing.assert_array_equal(compared, records["id"] < 5)
  assert records["exact_bgsis_spearman"][~compared].isna().all()


def test_same_on_8_devices(job, tmp_path):
  result = run_job([*JOB_ARGS, f"--workdir={tmp_path}"]
                   + [f"--config.{k}={v}" for k, v in ARGS.items()], devices=8)
  assert result.returncode == 0, result.stderr[-3000:]
  one = json.loads((job / "summary.json").read_text())
  eight = json.loads((tmp_path / "summary.json").read_text())
  assert_same_summary(eight, one)
  _, ranks_one = artifacts.read_stored(str(job), "sis.ranks")
  _, ranks_eight = artifacts.read_stored(str(tmp_path), "sis.ranks")
  # Pixels whose gradient scores tie to the last bit may swap places.
  assert np.mean(ranks_one == ranks_eight) > 0.999
  assert np.abs(ranks_one - ranks_eight).max() <= 2


def test_bad_threshold_names_the_field():
  config = digits_config.get_config()
  config.sis.threshold = 1.5
  dims = ModelDims(num_classes=10, feature_dim=64, input_size=16)
  with pytest.raises(ConfigError, match="config.sis.threshold"):
    stage.check_config(config, dims)
  config.sis.threshold = 0.9
  config.sis.block_size = 5
  with pytest.raises(ConfigError, match="config.sis.block_size: 5 does not"):
    stage.check_config(config, dims)


def test_imagenet_config_selects_single_pixels_and_an_8x8_exact_grid():
  config = imagenet_sis.get_config()
  dims = ModelDims(num_classes=1000, feature_dim=1280, input_size=224)
  stage.check_config(config, dims)
  assert stage.contract(config, dims).produces[0].shape == (224 * 224,)
  assert stage._exact_grid(config, 224) == (28, 64)
  removals = bgsis.removal_schedule(224 * 224, config.sis.step_fraction,
                                    config.sis.min_step_fraction)
  # 10% of the remaining pixels per step, 100 a step once that is fewer.
  assert removals.sum() == 224 * 224 and len(removals) == 48
