"""A killed job resumes: finished shards are kept, none is lost or counted twice,
and the summary equals an uninterrupted run's byte for byte."""

import json
import os
import subprocess
import sys

import pandas as pd

from conftest import ROOT, run_job, without_timing
from digits_model import digits_npz
import faulty_job


def _args(npz, workdir, *extra):
  """The shipped test model on an .npz of real digits, 20-example shards."""
  return ["--config=configs/digits.py", "--config.stages=evaluate",
          f"--workdir={workdir}", "--config.data.builtin=",
          f"--config.data.npz={npz}", "--config.batch_size=16",
          "--config.resume.shard_size=20", *extra]


def _run_killed(args, commits):
  """Runs the job through tests/faulty_job.py, killed after `commits` shards."""
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=1")
  return subprocess.run(
      [sys.executable, os.path.join(ROOT, "tests", "faulty_job.py"),
       str(commits), *args], cwd=ROOT, env=env, capture_output=True, text=True,
      timeout=600, check=False)


def _summary(workdir) -> dict:
  """summary.json without its timing (compilations and seconds): exactly
  equal, every float to the last digit, between runs of one job."""
  return without_timing(json.loads((workdir / "summary.json").read_text()))


def test_killed_run_resumes_to_the_same_summary(tmp_path):
  npz = digits_npz(tmp_path, n=96)
  killed = tmp_path / "killed"
  result = _run_killed(_args(npz, killed), commits=2)
  assert result.returncode == faulty_job.KILLED, result.stderr[-2000:]
  assert not (killed / "summary.json").exists()
  shard_dir = killed / "shards" / "evaluate" / "forward"
  first = {str(p.relative_to(shard_dir)): p.stat().st_mtime_ns
           for p in shard_dir.glob("shard-*/*.npy")}
  assert {p.split("/")[0] for p in first} == {"shard-00000-p00000",
                                             "shard-00001-p00000"}
  # A shard the kill interrupted: files written, never committed.
  (shard_dir / "shard-00002-p00000").mkdir()
  (shard_dir / "shard-00002-p00000" / "logits.npy").write_bytes(b"half")

  result = run_job(_args(npz, killed))
  assert result.returncode == 0, result.stderr[-2000:]
  after = {str(p.relative_to(shard_dir)): p.stat().st_mtime_ns
           for p in shard_dir.glob("shard-*/*.npy")}
  assert len({p.split("/")[0] for p in after}) == 5
  # Committed shards were reused, not recomputed.
  assert all(after[name] == mtime for name, mtime in first.items())

  fresh = tmp_path / "fresh"
  assert run_job(_args(npz, fresh)).returncode == 0
  assert _summary(killed) == _summary(fresh)
  records = pd.read_parquet(killed / "records" / "evaluate")
  assert sorted(records["id"]) == list(range(96))
  assert json.loads((killed / "summary.json").read_text())["evaluate"]["num_examples"] == 96


def test_repeated_runs_give_identical_summaries(tmp_path):
  npz = digits_npz(tmp_path, n=40)
  outputs = []
  for name in ("a", "b"):
    assert run_job(_args(npz, tmp_path / name)).returncode == 0
    outputs.append(_summary(tmp_path / name))
  assert outputs[0] == outputs[1]
