"""Two local processes x 4 fake devices (gloo collectives, a real jax.distributed
job) give the same summary.json as one process."""

import pandas as pd
import pytest

from conftest import launch_local, run_job


@pytest.mark.multiprocess
def test_two_processes_match_one(tmp_path):
  args = ["--config=configs/digits.py", "--config.stages=evaluate",
          "--config.data.num_examples=77", "--config.batch_size=16",
          "--config.resume.shard_size=24"]
  single = tmp_path / "single"
  result = run_job(args + [f"--workdir={single}"])
  assert result.returncode == 0, result.stderr[-2000:]
  multi = tmp_path / "multi"
  result = launch_local(args + [f"--workdir={multi}"])
  logs = "".join(p.read_text()[-1500:] for p in (multi / "logs").glob("*.log"))
  assert result.returncode == 0, logs
  assert (multi / "summary.json").read_bytes() == (single / "summary.json").read_bytes()
  parts = sorted((multi / "records" / "evaluate").glob("*.parquet"))
  assert [p.name for p in parts] == ["part-00000-of-00002.parquet",
                                     "part-00001-of-00002.parquet"]
  ids = [sorted(pd.read_parquet(p)["id"]) for p in parts]
  assert ids == [list(range(39)), list(range(39, 77))]
