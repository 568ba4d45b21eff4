"""The shipped CIFAR pair (`configs/cifar10_compare.py:fast`: ResNet-20,
ResNet-56 and their ensemble, every stage, on 32 class-balanced CIFAR-10 test
images from the shared data) runs and its report compares them per model and
per example."""

import json
import os

import pandas as pd
import pytest

from conftest import CIFAR_DIR, require_shared, run_job

STAGES = {"evaluate", "attack", "mistakes", "explain", "criticism", "sis"}


@pytest.mark.slow
def test_cifar_pair_and_ensemble_every_stage(tmp_path):
  require_shared(os.path.join(CIFAR_DIR, "resnet56.th"))
  result = run_job(["--config=configs/cifar10_compare.py:fast",
                    f"--config.data.npz={CIFAR_DIR}/test_jpeg.npz",
                    f"--config.models.resnet20.checkpoint={CIFAR_DIR}/resnet20.th",
                    f"--config.models.resnet56.checkpoint={CIFAR_DIR}/resnet56.th",
                    f"--workdir={tmp_path}"], timeout=1800)
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  models = ["resnet20", "resnet56", "ensemble"]
  assert summary["compare"]["models"] == models
  for name in models:
    assert set(summary["models"][name]) == STAGES
  # Pretrained CIFAR models: each well above chance on the 32 images, and
  # every pair's counts cover every labelled image.
  table = {row["metric"]: row for row in summary["compare"]["table"]}
  assert all(table["top-1"][name] > 0.6 for name in models)
  for pair in summary["compare"]["pairs"].values():
    assert (pair["both_right"] + pair["only_a"] + pair["only_b"]
            + pair["both_wrong"]) == 32
  assert set(summary["compare"]["transfer"]) == {"pgd_linf", "deepfool"}
  joined = pd.read_parquet(tmp_path / "records" / "compare")
  assert sorted(joined["id"]) == list(range(32))
  page = (tmp_path / "report.html").read_text()
  for title in ("Side by side", "Right and wrong, per pair",
                "Adversarial transfer", "SIS overlap"):
    assert title in page
