"""The same job gives the same summary on 1 device and on 8 fake CPU devices
(floats to 1e-5: see conftest.assert_same_summary)."""

import json

from conftest import assert_same_summary, run_job
from digits_model import JOB_ARGS


def test_evaluate_identical_on_1_and_8_devices(tmp_path):
  summaries = []
  for devices in (1, 8):
    workdir = tmp_path / f"d{devices}"
    # 203 digits in batches of 24: the last batch is padded on both layouts.
    result = run_job([*JOB_ARGS, f"--workdir={workdir}",
                      "--config.stages=evaluate",
                      "--config.data.num_examples=203",
                      "--config.batch_size=24"], devices=devices)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries.append(json.loads((workdir / "summary.json").read_text()))
  assert_same_summary(summaries[1], summaries[0])
  assert summaries[0]["evaluate"]["num_examples"] == 203
