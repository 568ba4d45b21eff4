"""Judgements scored into a finished run (`tests/study_run.py`): the job re-run
on its workdir reads its stored shards back, keeps every model output and
metric it had, and adds the human ones; a malformed or foreign judgements file
or key stops it with an error naming the file and changes no byte of the
workdir; judgements need a finished run of the same config.

The answers here are written in Python from the key (the browser test,
tests/study/test_study_end_to_end.py, has people's pages write them)."""

import hashlib
import json
import os

import jax
import pandas as pd
import pytest

from conftest import without_timing
import digits_model
import jaxaudit
import study_run
from jaxaudit import pipeline
from jaxaudit.data import digits as digits_data
from jaxaudit.errors import ConfigError, JudgementsError
from jaxaudit.study import judgements
from jaxaudit.study import key as key_lib

FIELDS = ("mistakes", "attack", "sis")


def _answers(key, annotator, index):
  """A complete, valid file's `Judgements` for `annotator` (the index-th):
  annotators accept more of the errors and adversarials the later they come,
  and name the first candidate of every other subset."""
  specs = key_lib.task_specs(key)
  errors, adversarial, subsets = {}, {}, {}
  for n, (task_id, task) in enumerate(key.tasks.items()):
    if task.kind == "error":
      errors[task_id] = (task.candidates[0][0],) if n % 3 <= index else ()
    elif task.kind == "adversarial":
      adversarial[task_id] = judgements.Adversarial(
          n % 4 < index + 1, specs[task_id].overlay(annotator))
    else:
      subsets[task_id] = task.candidates[0][0] if n % 2 else None
  return judgements.Judgements("", key.run_id, annotator, errors, adversarial,
                               subsets)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
  """(folder, workdir, key, judgement paths, summary before scoring)."""
  folder = tmp_path_factory.mktemp("judged")
  workdir, _, key = study_run.make(folder)
  paths = []
  for i, annotator in enumerate(key.annotators):
    path = os.path.join(folder, f"{annotator}.json")
    with open(path, "wb") as f:
      f.write(judgements.encode(_answers(key, annotator, i)))
    paths.append(path)
  with open(os.path.join(workdir, "summary.json")) as f:
    before = json.load(f)
  return folder, workdir, key, paths, before


def _config(folder, paths=(), stages=FIELDS):
  config = study_run.config(folder)
  for stage in stages:
    config[stage].judgements = ",".join(paths)
  return config


def _files(workdir):
  """Every file under `workdir` -> SHA-256 of its bytes."""
  out = {}
  for root, _, names in os.walk(workdir):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, workdir)] = hashlib.sha256(
            f.read()).hexdigest()
  return out


def _without_human(summary):
  """The summary without people's metrics and timing."""
  return {stage: {k: v for k, v in values.items() if k != "human"}
          for stage, values in without_timing(summary).items()}


def _bad_files(paths):
  """name -> (the file's bytes, the problem its error names)."""
  valid = json.loads(open(paths[0], "rb").read())
  answers = valid["answers"]

  def edited(**changes):
    return json.dumps(dict(valid, **changes)).encode()

  first = answers[0]
  adversarial = next(a for a in answers if a["kind"] == "adversarial")
  flipped = dict(adversarial, overlay=not adversarial["overlay"])
  return {
      "truncated": (open(paths[0], "rb").read()[:200], "not JSON"),
      "another_run": (edited(run_id="0" * 64), "judgements of another run"),
      "unknown_task": (edited(answers=answers + [
          dict(first, task="error-999999")]), "unknown task"),
      "duplicate": (edited(answers=answers + [first]),
                    "a second answer for task"),
      "missing_field": (edited(answers=[{"task": first["task"],
                                         "kind": first["kind"]}]),
                        "missing field 'correct'"),
      "wrong_type": (edited(annotator=7), "annotator is an integer"),
      "wrong_condition": (edited(answers=[flipped]), "the design shows it"),
      "huge": (b" " * (judgements.MAX_BYTES + 1), "byte cap"),
  }


def test_scoring_keeps_every_stored_output_and_adds_the_human_metrics(study):
  folder, workdir, key, paths, before = study
  files = _files(workdir)
  summary = pipeline.run(_config(folder, paths), workdir)
  after = _files(workdir)
  shards = [p for p in files if p.startswith("shards")]
  assert shards and all(after[p] == files[p] for p in shards)
  assert _without_human(summary) == _without_human(before)
  for stage in FIELDS:
    assert summary[stage]["human"]["annotators"] == list(key.annotators)
  human = summary["mistakes"]["human"]
  assert human["judged_errors"] == len(key.ids("error")) >= 30
  assert summary["attack"]["human"]["judged_adversarials"] == len(
      key.ids("adversarial")) >= 30
  assert summary["sis"]["human"]["human_accuracy"]["sis"]["items"] == len(
      key.ids("subset", "sis"))
  records = pd.read_parquet(os.path.join(workdir, "records", "mistakes"))
  judged = records["human_top1_accepted"].notna()
  assert judged.sum() == len(key.ids("error"))
  assert set(records.loc[judged, "id"]) == {
      key.tasks[t].example_id for t in key.ids("error")}
  with open(os.path.join(workdir, "report.html"), encoding="utf-8") as f:
    report = f.read()
  for title in ("Mistakes: human judgements", "Attacks: human judgements",
                "Overinterpretation: human judgements"):
    assert title in report
  # Scoring again gives the same numbers (seeded intervals and tests).
  assert without_timing(pipeline.run(_config(folder, paths), workdir)) == (
      without_timing(summary))


@pytest.mark.parametrize("bad", ["truncated", "another_run", "unknown_task",
                                 "duplicate", "missing_field", "wrong_type",
                                 "wrong_condition", "huge"])
def test_a_bad_judgements_file_changes_nothing(study, bad):
  folder, workdir, _, paths, _ = study
  data, problem = _bad_files(paths)[bad]
  path = os.path.join(folder, f"bad-{bad}.json")
  with open(path, "wb") as f:
    f.write(data)
  files = _files(workdir)
  with pytest.raises(JudgementsError, match=problem) as info:
    pipeline.run(_config(folder, paths[1:] + [path]), workdir)
  assert str(info.value).startswith(path)
  assert _files(workdir) == files


def test_a_second_file_of_one_annotator_is_refused(study):
  folder, workdir, _, paths, _ = study
  files = _files(workdir)
  copy = os.path.join(folder, "copy.json")
  with open(paths[0], "rb") as f, open(copy, "wb") as g:
    g.write(f.read())
  with pytest.raises(JudgementsError, match="also wrote"):
    pipeline.run(_config(folder, [paths[0], copy]), workdir)
  assert _files(workdir) == files


def test_an_edited_or_foreign_key_changes_nothing(study, tmp_path):
  folder, workdir, key, paths, _ = study
  files = _files(workdir)
  foreign = key_lib.to_json(key._replace(run_id="f" * 64))
  path = tmp_path / "tasks.json"
  path.write_text(json.dumps(foreign))
  config = _config(folder, paths)
  config.study.key = str(path)
  with pytest.raises(JudgementsError, match="study key of another run"):
    pipeline.run(config, workdir)
  path.write_text(json.dumps(foreign)[:-3])
  with pytest.raises(JudgementsError, match=f"{path}: not JSON"):
    pipeline.run(config, workdir)
  assert _files(workdir) == files


def test_judgements_need_a_finished_run_of_the_same_config(study, tmp_path):
  folder, workdir, _, paths, _ = study
  with pytest.raises(ConfigError, match="holds none"):
    pipeline.run(_config(folder, paths), str(tmp_path / "fresh"))
  assert not os.path.exists(tmp_path / "fresh")
  config = _config(folder, paths, stages=("attack",))
  config.stages = "evaluate,mistakes"
  with pytest.raises(ConfigError, match="config.attack.judgements: stage "
                                        "attack is not in config.stages"):
    pipeline.run(config, workdir)
  config = _config(folder, paths)
  config.resume.shard_size = 0
  with pytest.raises(ConfigError, match="shard_size"):
    pipeline.run(config, workdir)
  files = _files(workdir)
  config = _config(folder, paths)
  config.seed = 1
  with pytest.raises(JudgementsError, match="another run"):
    pipeline.run(config, workdir)
  assert _files(workdir) == files


def test_a_study_of_an_audit_from_memory(tmp_path):
  """`jaxaudit.write_study` for a model and images given to `jaxaudit.audit`
  in memory, checked to be the audited ones; the same audit with judgements
  scores them."""
  model, params = digits_model.model_and_params()
  images, labels = digits_data.digit_images("test")
  images, labels = images[:40], labels[:40].copy()
  labels[:10] = (labels[:10] + 1) % 10
  workdir = str(tmp_path / "run")
  result = jaxaudit.audit(model, params, images=images, labels=labels,
                          stages="evaluate,mistakes", workdir=workdir)
  with pytest.raises(ConfigError, match="not the ones audited"):
    jaxaudit.write_study(result, model,
                         jax.tree.map(lambda p: p * 1.01, params),
                         images=images, labels=labels)
  with pytest.raises(ConfigError, match="not the ones audited"):
    jaxaudit.write_study(result, model, params, images=images[::-1],
                         labels=labels)
  page = jaxaudit.write_study(result, model, params, images=images,
                              labels=labels, annotators=["a", "b"])
  key = key_lib.load(os.path.join(os.path.dirname(page), "tasks.json"))
  assert len(key.ids("error")) == result.summary["mistakes"]["num_errors"]
  path = str(tmp_path / "a.json")
  with open(path, "wb") as f:
    f.write(judgements.encode(judgements.Judgements(
        "", key.run_id, "a", {t: (key.tasks[t].candidates[0][0],)
                              for t in key.ids("error")}, {}, {})))
  scored = jaxaudit.audit(model, params, images=images, labels=labels,
                          stages="evaluate,mistakes", workdir=workdir,
                          mistakes={"judgements": path})
  human = scored.summary["mistakes"]["human"]
  assert human["accepted"]["value"] == 1.0
  assert human["rectified_top1"]["value"] == 1.0
  assert _without_human(scored.summary) == _without_human(result.summary)
