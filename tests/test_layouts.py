"""Every stage gives the same summary.json on 1 device, on 8 fake CPU devices and
on 2 local processes x 4 fake devices (floats to 1e-5: see assert_same_summary)."""

import json

import pandas as pd
import pytest

from conftest import assert_same_summary, launch_local, run_job

ALL_STAGES = "evaluate,attack,mistakes,explain,criticism,sis"


def _args():
  """The shipped test model on 50 real digits, every stage, 24-example shards."""
  return ["--config=configs/digits.py", "--config.data.num_examples=50",
          "--config.batch_size=16", f"--config.stages={ALL_STAGES}",
          "--config.resume.shard_size=24",
          "--config.criticism.num_prototypes=3",
          "--config.criticism.num_criticisms=2", "--config.explain.ig.probes=0"]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_every_stage_same_summary_on_every_layout(tmp_path):
  summaries = {}
  for devices in (1, 8):
    workdir = tmp_path / f"devices{devices}"
    result = run_job(_args() + [f"--workdir={workdir}"], devices=devices,
                     timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries[f"{devices} devices"] = json.loads(
        (workdir / "summary.json").read_text())
  workdir = tmp_path / "processes2"
  result = launch_local(_args() + [f"--workdir={workdir}"], timeout=1500)
  logs = "".join(p.read_text()[-1500:] for p in (workdir / "logs").glob("*.log"))
  assert result.returncode == 0, logs
  summaries["2 processes x 4"] = json.loads((workdir / "summary.json").read_text())
  reference = summaries["1 devices"]
  assert set(reference) == set(ALL_STAGES.split(","))
  for layout, summary in summaries.items():
    assert_same_summary(summary, reference, layout)


def _compare_args():
  """Two digits models and their ensemble on 40 digits: the stages the
  comparison joins (predictions, adversarials, SIS), 16-example shards.
  DeepFool is left out: its short runs end on the decision boundary, where
  the last bit a layout rounds decides success (measured: one of 40 early-
  model digits, norm 0.8326 either way, success on 8 devices only)."""
  return ["--config=configs/digits_compare.py:fast",
          "--config.data.num_examples=40", "--config.batch_size=16",
          "--config.stages=evaluate,attack,sis",
          "--config.attack.attacks=fgsm,pgd_linf",
          "--config.resume.shard_size=16"]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_compare_job_same_summary_on_every_layout(tmp_path):
  """Per-model stages, transfer passes and SIS overlap: 1 device = 8 devices =
  2 processes x 4 devices, and the joined records hold every example once."""
  summaries = {}
  for devices in (1, 8):
    workdir = tmp_path / f"devices{devices}"
    result = run_job(_compare_args() + [f"--workdir={workdir}"],
                     devices=devices, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries[f"{devices} devices"] = json.loads(
        (workdir / "summary.json").read_text())
  workdir = tmp_path / "processes2"
  result = launch_local(_compare_args() + [f"--workdir={workdir}"],
                        timeout=1500)
  logs = "".join(p.read_text()[-1500:] for p in (workdir / "logs").glob("*.log"))
  assert result.returncode == 0, logs
  summaries["2 processes x 4"] = json.loads((workdir / "summary.json").read_text())
  parts = sorted((workdir / "records" / "compare").glob("*.parquet"))
  ids = sorted(i for p in parts for i in pd.read_parquet(p)["id"])
  assert len(parts) == 2 and ids == list(range(40))
  reference = summaries["1 devices"]
  assert set(reference["compare"]["transfer"]) == {"fgsm", "pgd_linf"}
  for layout, summary in summaries.items():
    assert_same_summary(summary, reference, layout)
