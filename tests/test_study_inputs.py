"""How a job names its run and finds its judgements: the run id ignores only
the fields that carry judgements in; a judgements field takes files and
folders, and refuses what is not there."""

import json

import pytest

from jaxaudit import job_config
from jaxaudit import study_inputs
from jaxaudit.errors import ConfigError


def _resolved(config):
  return json.loads(config.to_json_best_effort(sort_keys=True))


def test_run_id_ignores_only_the_study_fields():
  config = job_config.base_config()
  base = study_inputs.run_id(_resolved(config))
  config.mistakes.judgements = "a.json,b.json"
  config.attack.judgements = "c.json"
  config.sis.judgements = "d"
  config.study.key = "elsewhere/tasks.json"
  config.study.num_resamples = 10
  assert study_inputs.run_id(_resolved(config)) == base
  config.seed = 1
  assert study_inputs.run_id(_resolved(config)) != base
  config.seed = 0
  config.attack.pgd_linf.steps = 7
  assert study_inputs.run_id(_resolved(config)) != base


def test_study_fields():
  assert study_inputs.is_study_field("attack.judgements")
  assert study_inputs.is_study_field("study.level")
  assert not study_inputs.is_study_field("attack.pgd_linf.steps")
  assert not study_inputs.is_study_field("studying")


def test_a_judgements_field_takes_files_and_folders(tmp_path):
  folder = tmp_path / "people"
  folder.mkdir()
  for name in ("b.json", "a.json", "notes.txt"):
    (folder / name).write_text("{}")
  single = tmp_path / "c.json"
  single.write_text("{}")
  paths = study_inputs._paths("config.sis.judgements",
                              f"{folder}, {single},")
  assert paths == [str(folder / "a.json"), str(folder / "b.json"),
                   str(single)]


@pytest.mark.parametrize("value, problem", [
    ("missing.json", "no file or folder missing.json"),
    ("empty", "folder empty holds no .json"),
    ("c.json,c.json", "names a file twice"),
])
def test_a_judgements_field_refuses_what_is_not_there(tmp_path, monkeypatch,
                                                      value, problem):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "empty").mkdir()
  (tmp_path / "c.json").write_text("{}")
  with pytest.raises(ConfigError, match=f"config.sis.judgements: {problem}"):
    study_inputs._paths("config.sis.judgements", value)
