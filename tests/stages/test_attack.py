"""The attack stage end to end on the CIFAR ResNet-20 and real CIFAR-10 images."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from conftest import CIFAR_DIR, require_shared, run_job
from jaxaudit import job_config
from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.stages import attack


def _args(workdir, attacks="fgsm,pgd_linf", n=16):
  npz = require_shared(os.path.join(CIFAR_DIR, "test_jpeg.npz"))
  return ["--config=configs/cifar10_attack.py:fast", f"--workdir={workdir}",
          f"--config.data.npz={npz}",
          f"--config.model.checkpoint={CIFAR_DIR}/resnet20.th",
          f"--config.data.num_examples={n}", "--config.batch_size=8",
          "--config.attack.batch_size=8", f"--config.attack.attacks={attacks}",
          "--config.attack.fgsm.epsilons=(1,2,4)",
          "--config.attack.pgd_linf.epsilons=(1,2,4)",
          "--config.attack.deepfool.epsilons=(0.1,0.5)",
          "--config.attack.deepfool.steps=4",
          "--config.attack.deepfool.candidates=3"]


def test_summary_records_and_trust_checks(tmp_path):
  result = run_job(_args(tmp_path))
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((tmp_path / "summary.json").read_text())["attack"]
  clean = summary["clean_accuracy"]
  for name in ("fgsm", "pgd_linf"):
    robust = list(summary["robust_accuracy"][name].values())
    assert list(summary["robust_accuracy"][name]) == ["1/255", "2/255",
                                                      "4/255"]
    assert all(r <= clean for r in robust) and robust[-1] < clean
    assert all(b <= a for a, b in zip(robust, robust[1:]))
    # CIFAR-10's shipped superclasses forgive e.g. cat -> dog flips.
    plain = summary["robust_accuracy"][name]
    plausible = summary["plausible_robust_accuracy"][name]
    assert all(plausible[e] >= plain[e] for e in plain)
  assert summary["warnings"] == []
  records = pd.read_parquet(tmp_path / "records" / "attack")
  assert len(records) == 16 * 2 * 3
  assert set(records["attack"]) == {"fgsm", "pgd_linf"}
  assert (records["norm"] <= records["epsilon"] + 1e-6).all()
  # The paper's flips: only images classified correctly before the attack.
  assert not (records["success"] & ~records["correct_before"]).any()
  assert (summary["misclassified_before_attack"]
          == (~records["correct_before"]).sum() // 6)
  flipped = records[records["plausible"]]
  pairs = {frozenset((a, b)) for a, b in zip(flipped["label"],
                                             flipped["adv_class"])}
  assert pairs <= {frozenset(p) for p in ((3, 5), (4, 7), (1, 9), (0, 8))}
  assert "Adversarial robustness" in (tmp_path / "report.html").read_text()


def test_criticism_ranks_criticisms_by_deepfool_distance(tmp_path):
  result = run_job(_args(tmp_path, "deepfool") + [
      "--config.stages=evaluate,attack,criticism",
      "--config.criticism.group_by=global"])
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((tmp_path / "summary.json").read_text())["criticism"]
  crits = summary["criticisms"]["all"]
  fragile = summary["criticisms_by_adversarial_distance"]["all"]
  # Correctly classified criticisms are ranked, misclassified ones apart.
  misclassified = summary["misclassified_criticisms"]["all"]
  assert sorted(fragile + misclassified) == sorted(crits)
  records = pd.read_parquet(tmp_path / "records" / "criticism")
  rows = records[records["role"] == "criticism"].set_index("adversarial_rank")
  distances = np.nan_to_num(rows.sort_index()["adversarial_distance"],
                            nan=np.inf)
  assert np.isfinite(distances).any() and (distances > 0).any()
  assert np.array_equal(distances, np.sort(distances))


@pytest.mark.slow
def test_identical_on_1_and_8_devices(tmp_path):
  summaries = []
  for devices in (1, 8):
    workdir = tmp_path / f"d{devices}"
    result = run_job(_args(workdir, "fgsm,pgd_linf,deepfool", n=12),
                     devices=devices)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries.append(json.loads((workdir / "summary.json").read_text()))
  one, eight = summaries[0]["attack"], summaries[1]["attack"]
  for key in ("robust_accuracy", "plausible_robust_accuracy"):
    for name in ("fgsm", "pgd_linf"):
      assert one[key][name] == eight[key][name]
    # DeepFool stops 2% past the decision boundary, so float rounding that
    # differs between batch layouts may flip an example; allow one of 12.
    for eps, value in one[key]["deepfool"].items():
      assert abs(value - eight[key]["deepfool"][eps]) <= 1 / 12 + 1e-6


def test_bad_attack_settings_name_their_field():
  config = job_config.base_config()
  dims = ModelDims(num_classes=10, feature_dim=None, input_size=32)
  config.attack.attacks = "fgsm,pgd_l3"
  with pytest.raises(ConfigError, match="config.attack.attacks.*pgd_linf"):
    attack.check_config(config, dims)
  config.attack.attacks = "fgsm,pgd_linf"
  config.attack.pgd_linf.loss = "hinge"
  with pytest.raises(ConfigError, match="config.attack.pgd_linf.loss: unknown"):
    attack.check_config(config, dims)
  config.attack.pgd_linf.loss = "ce"
  config.attack.pgd_linf.steps_ = 3  # A misspelt hyperparameter.
  with pytest.raises(ConfigError, match="config.attack.pgd_linf: .*steps_"):
    attack.check_config(config, dims)
