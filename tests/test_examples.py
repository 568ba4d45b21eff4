"""examples/audit_your_model.py runs offline and audits a real trained model."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT


def _run(tmp_path, *args):
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, "examples", "audit_your_model.py"),
       f"--workdir={tmp_path}", *args], capture_output=True, text=True,
      timeout=900, check=False, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert set(summary) == {"evaluate", "attack", "mistakes", "explain",
                          "criticism", "sis"}
  assert (tmp_path / "report.html").is_file()
  return summary


def test_example_quick(tmp_path):
  summary = _run(tmp_path, "--steps=150", "--audit=60")
  assert summary["evaluate"]["num_examples"] == 60
  assert summary["evaluate"]["top1"] > 0.5


@pytest.mark.slow
def test_example_as_documented(tmp_path):
  summary = _run(tmp_path)
  assert summary["evaluate"]["top1"] > 0.85
  robust = summary["attack"]["robust_accuracy"]["pgd_linf"]
  assert robust["32/255"] < robust["8/255"] < summary["evaluate"]["top1"]
  sis = summary["sis"]
  assert sis["subset_accuracy"]["10%"] > sis["random_subset_accuracy"]["10%"]
