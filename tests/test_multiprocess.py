"""Two local processes x 4 fake devices (gloo collectives, a real jax.distributed
job) give the same summary.json as one process (floats to 1e-5:
conftest.assert_same_summary)."""

import json

import pandas as pd
import pytest

from conftest import assert_same_summary, launch_local, run_job


def _one_and_two_processes(tmp_path, args):
  """Workdirs of the job run by one process and by 2 processes x 4 devices."""
  single = tmp_path / "single"
  result = run_job(args + [f"--workdir={single}"])
  assert result.returncode == 0, result.stderr[-2000:]
  multi = tmp_path / "multi"
  result = launch_local(args + [f"--workdir={multi}"])
  logs = "".join(p.read_text()[-1500:] for p in (multi / "logs").glob("*.log"))
  assert result.returncode == 0, logs
  return single, multi


@pytest.mark.multiprocess
def test_two_processes_match_one(tmp_path):
  args = ["--config=configs/digits.py", "--config.stages=evaluate",
          "--config.data.num_examples=77", "--config.batch_size=16",
          "--config.resume.shard_size=24"]
  single, multi = _one_and_two_processes(tmp_path, args)
  assert_same_summary(json.loads((multi / "summary.json").read_text()),
                      json.loads((single / "summary.json").read_text()))
  parts = sorted((multi / "records" / "evaluate").glob("*.parquet"))
  assert [p.name for p in parts] == ["part-00000-of-00002.parquet",
                                     "part-00001-of-00002.parquet"]
  ids = [sorted(pd.read_parquet(p)["id"]) for p in parts]
  assert ids == [list(range(39)), list(range(39, 77))]


@pytest.mark.multiprocess
def test_two_processes_share_features_without_gathering_them(tmp_path):
  """Criticism (each group selected by one process, its features sent only
  there) and explain's neighbours (references sharded over all 8 devices)
  give the one-process summary."""
  args = ["--config=configs/digits.py",
          "--config.stages=evaluate,explain,criticism",
          "--config.data.num_examples=90", "--config.batch_size=16",
          "--config.explain.methods=saliency",
          "--config.explain.adversarial_attack=",
          "--config.criticism.num_prototypes=3",
          "--config.criticism.num_criticisms=2"]
  single, multi = _one_and_two_processes(tmp_path, args)
  got, want = (json.loads((w / "summary.json").read_text())
               for w in (multi, single))
  assert got["criticism"]["group_by"] == "true_class"
  assert len(got["criticism"]["prototypes"]) == 10
  assert_same_summary(got, want)
  neighbours = [pd.read_parquet(w / "records" / "explain")
                .sort_values("id")["neighbours_predicted"].tolist()
                for w in (multi, single)]
  assert [list(n) for n in neighbours[0]] == [list(n) for n in neighbours[1]]


@pytest.mark.multiprocess
def test_two_processes_corrupt_as_one(tmp_path):
  """The shift stage's random corruptions draw from each image's id, not its
  process or device: the same predictions and summary, uneven halves."""
  args = ["--config=configs/digits.py", "--config.stages=evaluate,shift",
          "--config.data.num_examples=77", "--config.batch_size=16",
          "--config.resume.shard_size=24",
          "--config.shift.corruptions=glass_blur,shot_noise,frost",
          "--config.shift.severities=(2,5)"]
  single, multi = _one_and_two_processes(tmp_path, args)
  got, want = (json.loads((w / "summary.json").read_text())
               for w in (multi, single))
  assert got["shift"]["flip_rate"]["glass_blur"]["5"] > 0
  assert_same_summary(got, want)
  predictions = [pd.read_parquet(w / "records" / "shift").sort_values("id")
                 ["frost_prediction"].tolist() for w in (multi, single)]
  assert [list(p) for p in predictions[0]] == [list(p) for p in predictions[1]]
