"""Jobs on a real TFDS dataset (`tests/fixtures/tfds`, written by TFDS's own
builder): the first 48 test digits as ArrayRecord and as TFRecord.

Read from TFDS, the digits give the built-in digits' summary; on 2 processes
each reads and decodes only its own half; a TFRecord-prepared copy is refused
before any compute, with the command that converts it.
"""

import json
import os
import textwrap

import pytest

from conftest import ROOT, assert_same_summary, launch_local, run_job
from conftest import without_timing

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "tfds")
BASE = ["--config=configs/digits.py", "--config.stages=evaluate",
        "--config.batch_size=16", "--config.evaluate.gallery_size=0"]
TFDS = ["--config.data.builtin=", "--config.data.tfds_name=jaxaudit_digits",
        "--config.data.split=test"]

# Loaded by every process of the job (PYTHONPATH): logs which records each
# process reads and which images it decodes.
_RECORDER = """
import os
from jaxaudit.data import tfds_source

_LOG = os.path.join(os.environ["TFDS_READS"], f"{os.getpid()}.log")
_read, _load = tfds_source.TfdsSource._read, tfds_source.TfdsSource.load


def _log(kind, indices):
  with open(_LOG, "a") as f:
    f.write("".join(f"{kind} {int(i)}\\n" for i in indices))


def read(self, indices):
  _log("read", indices)
  return _read(self, indices)


def load(self, index, prep):
  _log("decode", [index])
  return _load(self, index, prep)


tfds_source.TfdsSource._read, tfds_source.TfdsSource.load = read, load
"""


def _summary(workdir) -> dict:
  with open(workdir / "summary.json") as f:
    return without_timing(json.load(f))


def test_tfds_digits_give_the_builtin_digits_summary(tmp_path):
  builtin = tmp_path / "builtin"
  result = run_job(BASE + ["--config.data.num_examples=48",
                           f"--workdir={builtin}"])
  assert result.returncode == 0, result.stderr[-2000:]
  tfds = tmp_path / "tfds"
  result = run_job(BASE + TFDS + [
      f"--config.data.tfds_data_dir={FIXTURES}/array_record",
      f"--workdir={tfds}"])
  assert result.returncode == 0, result.stderr[-2000:]
  assert _summary(tfds) == _summary(builtin)
  assert _summary(tfds)["evaluate"]["num_examples"] == 48


@pytest.mark.multiprocess
def test_each_of_two_processes_reads_and_decodes_only_its_half(tmp_path,
                                                                monkeypatch):
  hooks, reads = tmp_path / "hooks", tmp_path / "reads"
  hooks.mkdir()
  reads.mkdir()
  (hooks / "sitecustomize.py").write_text(textwrap.dedent(_RECORDER))
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
      [str(hooks), ROOT, os.environ.get("PYTHONPATH", "")]))
  monkeypatch.setenv("TFDS_READS", str(reads))
  workdir = tmp_path / "multi"
  result = launch_local(BASE + TFDS + [
      f"--config.data.tfds_data_dir={FIXTURES}/array_record",
      "--config.resume.shard_size=10", f"--workdir={workdir}"])
  logs = "".join(p.read_text()[-1500:] for p in (workdir / "logs").glob("*"))
  assert result.returncode == 0, logs
  per_process = []
  for log in reads.glob("*.log"):
    lines = [line.split() for line in log.read_text().splitlines()]
    per_process.append(({int(i) for kind, i in lines if kind == "read"},
                        sorted(int(i) for kind, i in lines if kind == "decode")))
  assert len(per_process) == 2
  per_process.sort(key=lambda p: min(p[0]))
  halves = [set(range(24)), set(range(24, 48))]
  for (read, decoded), half in zip(per_process, halves):
    assert read == half  # Labels, names and images: its own records only.
    assert decoded == sorted(half)  # Each of its images decoded once.
  single = tmp_path / "single"
  result = run_job(BASE + TFDS + [
      f"--config.data.tfds_data_dir={FIXTURES}/array_record",
      f"--workdir={single}"])
  assert result.returncode == 0, result.stderr[-2000:]
  assert_same_summary(_summary(workdir), _summary(single))


def test_tfrecord_dataset_is_refused_before_any_compute(tmp_path):
  workdir = tmp_path / "run"
  result = run_job(BASE + TFDS + [
      f"--config.data.tfds_data_dir={FIXTURES}/tfrecord",
      f"--workdir={workdir}"])
  assert result.returncode != 0
  folder = os.path.join(FIXTURES, "tfrecord", "jaxaudit_digits", "1.0.0")
  assert (f"tfds convert_format --dataset_version_dir={folder} "
          "--out_file_format=array_record") in result.stderr
  assert "Traceback" not in result.stderr
  assert not (workdir / "summary.json").exists()
  assert not (workdir / "shards").exists()
