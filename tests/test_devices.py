"""The same job gives the same summary on 1 device and on 8 fake CPU devices."""

import json
import os

from conftest import CIFAR_DIR, require_shared, run_job


def test_evaluate_identical_on_1_and_8_devices(tmp_path):
  npz = require_shared(os.path.join(CIFAR_DIR, "test_jpeg.npz"))
  summaries = []
  for devices in (1, 8):
    workdir = tmp_path / f"d{devices}"
    result = run_job(["--config=configs/cifar10_resnet20.py",
                      f"--workdir={workdir}", f"--config.data.npz={npz}",
                      f"--config.model.checkpoint={CIFAR_DIR}/resnet20.th",
                      "--config.data.num_examples=203", "--config.batch_size=24"],
                     devices=devices)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries.append((workdir / "summary.json").read_text())
  assert summaries[0] == summaries[1]
  assert json.loads(summaries[0])["evaluate"]["num_examples"] == 203
