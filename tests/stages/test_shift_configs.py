"""The shipped shift configs as a user runs them (the CLI), on the shared
data: `configs/imagenet_shift.py:fast` (Lite0, 8 ImageNet-sample photos,
the 15 ImageNet-C corruptions: corruption errors, mCE and relative mCE
against AlexNet) and `configs/cifar10_shift.py:fast` (ResNet-20, 64 CIFAR-10
test images, all 19 corruptions: no mCE, and why)."""

import json
import math

import pytest

from conftest import CIFAR_DIR, IMAGENET_SAMPLE, require_shared, run_job
from jaxaudit.corruptions import metrics, spec, tables


def _run(tmp_path, args) -> dict:
  result = run_job(args + [f"--workdir={tmp_path}"], timeout=1200)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads((tmp_path / "summary.json").read_text())["shift"]


@pytest.mark.slow
def test_imagenet_config_scores_against_alexnet(tmp_path):
  require_shared(IMAGENET_SAMPLE)
  got = _run(tmp_path, ["--config=configs/imagenet_shift.py:fast",
                        "--config.shift.corruptions=imagenet_c"])
  assert got["parameter_set"] == "imagenet"
  assert set(got["ce"]) == set(tables.ALEXNET_CORRUPTION_ERROR)
  for name, ce in got["ce"].items():
    error = got["mean_error"][name]
    assert ce == pytest.approx(error / tables.ALEXNET_CORRUPTION_ERROR[name],
                               rel=1e-5)
  assert math.isfinite(got["mce"]) and math.isfinite(got["relative_mce"])
  assert got["mce"] == pytest.approx(sum(got["ce"].values()) / 15, rel=1e-5)
  assert metrics.SAMPLE_NOTE in got["notes"]
  assert metrics.ELASTIC_NOTE in got["notes"]
  assert set(got["family_ce"]) == {"noise", "blur", "weather", "digital"}
  # Lite0 loses accuracy under the strongest corruptions it met clean.
  assert got["mean_over_corruptions"]["top1"]["5"] < got["clean"]["top1"]


@pytest.mark.slow
def test_cifar_config_runs_every_corruption_without_an_imagenet_baseline(
    tmp_path):
  require_shared(CIFAR_DIR)
  got = _run(tmp_path, ["--config=configs/cifar10_shift.py:fast"])
  assert got["parameter_set"] == "cifar"
  assert got["corruptions"] == list(spec.CORRUPTIONS)
  assert "mce" not in got and "cifar10" in got["notes"][0]
  assert got["mean_over_corruptions"]["top1"]["5"] < (
      got["mean_over_corruptions"]["top1"]["1"] < got["clean"]["top1"])
