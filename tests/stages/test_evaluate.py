"""The evaluate stage's calibration on the test model's real digits, checked
against an independent computation from its own per-example records."""

import os
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from jaxaudit import pipeline

sys.path.insert(0, os.path.join(ROOT, "tests", "calibration"))
from test_binning import _reference_ece  # pylint: disable=g-import-not-at-top,wrong-import-position

sys.path.insert(0, os.path.join(ROOT, "configs"))
import digits  # pylint: disable=g-import-not-at-top,wrong-import-position


def _softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_calibration_from_the_records(tmp_path):
  config = digits.get_config("fast")
  config.stages = "evaluate"
  config.data.num_examples = 300
  summary = pipeline.run(config, str(tmp_path))["evaluate"]["calibration"]
  records = pd.read_parquet(tmp_path / "records" / "evaluate")
  records = records.sort_values("id")
  confidence = records["confidence"].to_numpy(np.float64)
  correct = records["correct"].to_numpy(bool)
  np.testing.assert_allclose(confidence, np.stack(
      records["top5_probs"].to_numpy())[:, 0], rtol=1e-5)
  assert summary["num_examples"] == 300
  for kind in ("equal_width", "equal_mass"):
    assert summary["ece"][kind] == pytest.approx(_reference_ece(
        confidence.tolist(), correct.tolist(), 15, kind), abs=2e-6)
    low, high = summary["ece_interval"][kind]
    assert low <= summary["ece"][kind] <= high and high > low
    points = summary["reliability"][kind]
    assert sum(points["count"]) == 300
  assert summary["nll"] == pytest.approx(records["nll"].mean(), abs=2e-6)
  assert summary["brier"] == pytest.approx(records["brier"].mean(), abs=2e-6)
  # The optimal temperature lowers the NLL; a confident digits CNN is not
  # made worse by it.
  assert summary["temperature"]["nll"] <= summary["nll"] + 1e-6
  assert 0.05 <= summary["temperature"]["value"] <= 20
  with open(tmp_path / "report.html", encoding="utf-8") as f:
    report = f.read()
  assert "Reliability diagram" in report and "Expected calibration error" in report
