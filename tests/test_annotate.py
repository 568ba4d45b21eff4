"""`jaxaudit.annotate` on real runs of the digits test model: a study page and
its key from a run with evaluate, attack, explain and sis; no subset tasks
from a run without sis; a clear error for a folder that holds no run; the
command line."""

import collections
import json
import os
import re
import subprocess
import sys

import pytest

import study_run
from conftest import ROOT
from jaxaudit import annotate
from jaxaudit import pipeline
from jaxaudit import study_inputs
from jaxaudit.errors import DataError
from jaxaudit.study import key as key_lib

# The first 92 test digits are all classified right: 128 hold two errors.
NUM_EXAMPLES = 128
TASK_IDS = re.compile(r'"id":"((?:error|adversarial|subset)-[^"]+)"')


def _config(stages):
  config = study_run.digits_config(stages)
  config.data.num_examples = NUM_EXAMPLES
  config.attack.pgd_linf.steps = 3
  return config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("annotate") / "run")
  pipeline.run(_config("evaluate,attack,explain,sis"), workdir)
  return workdir


def _key(page_path):
  with open(os.path.join(os.path.dirname(page_path), annotate.KEY_FILE)) as f:
    return json.load(f)


def test_page_holds_every_kind_and_the_key_maps_it_back(run):
  path = annotate.write_study(run, seed=4, annotators=["ann-a", "ann-b"],
                              max_per_kind=40)
  assert path == os.path.join(run, "study", "study.html")
  with open(path, encoding="utf-8") as f:
    html = f.read()
  key = _key(path)
  with open(os.path.join(run, pipeline.CONFIG_FILE), "rb") as f:
    assert key["run_id"] == study_inputs.run_id(json.load(f))
  loaded = key_lib.load(os.path.join(run, "study", annotate.KEY_FILE))
  assert loaded.adversarial._replace(epsilon=0.0) == key_lib.AdversarialSource(
      "pgd_linf", 0.0, "32/255", "saliency")
  assert loaded.adversarial.epsilon == pytest.approx(32 / 255)
  assert loaded.subset_fraction == 0.05
  assert key["seed"] == 4 and key["annotators"] == ["ann-a", "ann-b"]
  kinds = collections.Counter(t["kind"] for t in key["tasks"])
  with open(os.path.join(run, "summary.json")) as f:
    top1 = json.load(f)["evaluate"]["top1"]
  assert kinds["error"] == round((1 - top1) * NUM_EXAMPLES) > 0
  assert 0 < kinds["adversarial"] <= 40
  assert kinds["subset"] == 40
  shown = TASK_IDS.findall(html)
  assert sorted(shown) == sorted(t["id"] for t in key["tasks"])
  assert key["run_id"] in html
  variants = collections.Counter(t["variant"] for t in key["tasks"]
                                 if t["kind"] == "subset")
  assert variants == {"sis": 20, "random": 20}
  for task in key["tasks"]:
    if task["kind"] == "subset":
      assert re.fullmatch(r"subset-[0-9a-f]{20}", task["id"])
    else:
      assert task["id"] == f"{task['kind']}-{task['example_id']}"
    if task["kind"] == "error":
      assert len(task["candidates"]) >= 5


def test_a_run_without_sis_gets_no_subset_tasks(tmp_path):
  workdir = str(tmp_path / "evaluate-only")
  pipeline.run(_config("evaluate"), workdir)
  key = _key(annotate.write_study(workdir))
  assert {t["kind"] for t in key["tasks"]} == {"error"}


def test_a_folder_without_a_run_is_refused(tmp_path):
  with pytest.raises(DataError, match=f"{tmp_path}.*not a finished"):
    annotate.write_study(str(tmp_path))


def test_command_line(run, tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  command = [sys.executable, "-m", "jaxaudit.annotate"]
  done = subprocess.run(command + [f"--workdir={run}", "--seed=2",
                                   "--annotators=x,y,z", "--max_per_kind=10"],
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300, check=False)
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip().endswith(os.path.join("study", "study.html"))
  key = _key(done.stdout.strip().splitlines()[-1])
  assert key["seed"] == 2 and key["annotators"] == ["x", "y", "z"]
  assert len(key["tasks"]) <= 30
  failed = subprocess.run(command + [f"--workdir={tmp_path}"], cwd=ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=300, check=False)
  assert failed.returncode != 0
  assert failed.stderr.strip().splitlines()[-1].startswith(
      f"error: --workdir {tmp_path} is not a finished")
