"""Declared sweeps expand into runs; the index gathers their headline metrics."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from conftest import CIFAR_DIR, ROOT, require_shared
from jaxaudit import sweep
from jaxaudit.errors import ConfigError


def test_product_and_zip():
  runs = sweep.product(("a", [1, 2]), ("b", ["x", "y"]))
  assert runs == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"},
                  {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
  assert sweep.zip_axes(("a", [1, 2]), ("b", [3, 4])) == [{"a": 1, "b": 3},
                                                         {"a": 2, "b": 4}]
  with pytest.raises(ConfigError):
    sweep.zip_axes(("a", [1, 2]), ("b", [3]))
  assert sweep.overrides_as_flags({"attack.eps": 0.5}) == ["--config.attack.eps=0.5"]


def test_shipped_sweep_declarations_load():
  runs = sweep.load_sweep(os.path.join(ROOT, "configs", "cifar10_resnet20.py"))
  assert [r["model.name"] for r in runs] == ["cifar_resnet20", "cifar_resnet56"]
  with pytest.raises(ConfigError, match="declares no sweep"):
    sweep.load_sweep(os.path.join(ROOT, "configs", "default.py"))


def test_index_of_finished_and_missing_runs(tmp_path):
  runs = [{"model.name": "a"}, {"model.name": "b"}]
  done = tmp_path / sweep.run_name(0, runs[0])
  done.mkdir()
  (done / "summary.json").write_text(json.dumps({
      "evaluate": {"top1": 0.5, "per_class_accuracy": {"cat": 1.0}},
      "attack": {"robust_accuracy": {"pgd": {"0.0": 0.5, "0.01": 0.2}}}}))
  table = sweep.write_index(str(tmp_path), runs)
  assert list(table["status"]) == ["done", "missing"]
  assert table.loc[0, "evaluate.top1"] == 0.5
  assert "evaluate.per_class_accuracy.cat" not in table.columns
  assert table.loc[0, "attack.robust_accuracy.pgd.0.01"] == 0.2
  assert pd.read_parquet(tmp_path / "sweep_index.parquet").shape == table.shape
  page = (tmp_path / "sweep_index.html").read_text()
  assert "robust accuracy vs epsilon" in page


@pytest.mark.slow
def test_shipped_sweep_runs_end_to_end(tmp_path):
  require_shared(os.path.join(CIFAR_DIR, "resnet56.th"))
  result = subprocess.run(
      [sys.executable, "launch/sweep.py", "--config=configs/cifar10_resnet20.py",
       f"--workdir={tmp_path}", "--", "--config.data.num_examples=200"],
      cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  table = pd.read_parquet(tmp_path / "sweep_index.parquet")
  assert list(table["status"]) == ["done", "done"]
  assert (table["evaluate.top1"] > 0.7).all()
  for run in table["run"]:
    config = json.loads((tmp_path / run / "config.json").read_text())
    assert config["model"]["name"] in run
