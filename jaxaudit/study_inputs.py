"""People's judgements as inputs to a finished run, read before any compute.

A study (`python -m jaxaudit.annotate`) belongs to one run, named by its run
id: the SHA-256 of the run's resolved config as canonical JSON, without the
fields that only feed judgements in (`STUDY_FIELDS`), so adding judgements to
the config keeps the id. The judgements come in through
`config.mistakes.judgements`, `config.attack.judgements` and
`config.sis.judgements` (comma-separated files or folders of .json files), the
key through `config.study.key` (default `<workdir>/study/tasks.json`). They
score a finished run: the job is run again on its workdir, which its workdir
check allows since only these fields changed, every stage reads its stored
shards back instead of recomputing them, and the judged stages add their
human metrics.

`load` reads and checks everything before the job writes anything, so a
malformed or foreign file stops the job with a one-line error naming the file
and leaves every result already written as it was.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os

import ml_collections

from jaxaudit import storage
from jaxaudit.errors import ConfigError, DataError, JudgementsError
from jaxaudit.study import judgements as judgements_lib
from jaxaudit.study import key as key_lib
from jaxaudit.study.metrics import Settings, Study

# Config fields that carry judgements in; they do not change a run's identity.
STUDY_FIELDS = ("mistakes.judgements", "attack.judgements", "sis.judgements",
                "study")
# The stage that scores each kind of task.
JUDGED_STAGES = {"mistakes": "error", "attack": "adversarial",
                 "sis": "subset"}
STUDY_DIR = "study"
KEY_FILE = "tasks.json"
SUMMARY_FILE = "summary.json"


def default_config() -> ml_collections.ConfigDict:
  """`config.study`: where the key is and how intervals are drawn."""
  return ml_collections.ConfigDict({
      "key": "",  # "" = <workdir>/study/tasks.json.
      "num_resamples": 2000,  # Bootstrap resamples per interval.
      "num_permutations": 10000,  # Relabellings in the permutation test.
      "level": 0.95,  # The intervals' coverage.
  })


def is_study_field(path: str) -> bool:
  """Whether a dotted config path ("attack.judgements") only feeds
  judgements in."""
  return any(path == f or path.startswith(f + ".") for f in STUDY_FIELDS)


def run_id(resolved: dict) -> str:
  """The run's id: SHA-256 of its resolved config (a JSON object, as in
  config.json) without `STUDY_FIELDS`, as sorted compact JSON."""
  stripped = json.loads(json.dumps(resolved))
  for field in STUDY_FIELDS:
    *parents, leaf = field.split(".")
    node = stripped
    for name in parents:
      node = node.get(name) if isinstance(node, dict) else None
    if isinstance(node, dict):
      node.pop(leaf, None)
  text = json.dumps(stripped, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(text.encode()).hexdigest()


def _paths(field: str, value: str) -> list[str]:
  """The files a judgements field names: each entry a file, or a folder whose
  *.json files are taken in name order."""
  paths = []
  for entry in (e.strip() for e in value.split(",")):
    if not entry:
      continue
    if os.path.isdir(entry):
      found = sorted(glob.glob(os.path.join(glob.escape(entry), "*.json")))
      if not found:
        raise ConfigError(f"{field}: folder {entry} holds no .json file")
      paths += found
    elif os.path.isfile(entry):
      paths.append(entry)
    else:
      raise ConfigError(f"{field}: no file or folder {entry}")
  if len(set(paths)) != len(paths):
    raise ConfigError(f"{field}: names a file twice")
  return paths


def _settings(config: ml_collections.ConfigDict) -> Settings:
  cfg = config.study
  for name in ("num_resamples", "num_permutations"):
    value = cfg[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ConfigError(f"config.study.{name} must be an integer >= 1, got "
                        f"{value!r}")
  if not 0.0 < float(cfg.level) < 1.0:
    raise ConfigError(f"config.study.level must be in (0, 1), got "
                      f"{cfg.level!r}")
  return Settings(int(config.seed), int(cfg.num_resamples),
                  int(cfg.num_permutations), float(cfg.level))


def _read_key(path: str) -> key_lib.StudyKey:
  if not storage.isfile(path):
    raise DataError(f"config.study.key: no study key {path} (write the study "
                    "with python -m jaxaudit.annotate --workdir=RUN)")
  if storage.is_local(path):
    return key_lib.load(storage.local_path(path))
  if storage.size(path) > key_lib.MAX_BYTES:
    raise JudgementsError(f"{path}: over the {key_lib.MAX_BYTES}-byte cap")
  return key_lib.load(storage.read_bytes(path), source=path)


def load(config: ml_collections.ConfigDict, workdir: str,
         stage_names: list[str]) -> dict[str, Study]:
  """The judgements each judged stage scores, all checked.

  Args:
    config: the job config.
    workdir: the job's folder; it must hold the finished run.
    stage_names: the job's stages.

  Returns:
    stage name -> `Study` for each stage whose judgements field is set.

  Raises:
    ConfigError: a judgements field of a stage that does not run, a study
      setting out of range, a missing path, or judgements for a run that is
      not finished or does not keep its shards.
    JudgementsError: the key or a judgements file is unreadable, malformed,
      of another run, or answers tasks the study does not have.
  """
  fields = {stage: f"config.{stage}.judgements" for stage in JUDGED_STAGES}
  given = {stage: _paths(fields[stage], config[stage].judgements)
           for stage in JUDGED_STAGES if config[stage].judgements}
  if not given:
    return {}
  settings = _settings(config)
  for stage in given:
    if stage not in stage_names:
      raise ConfigError(f"{fields[stage]}: stage {stage} is not in "
                        "config.stages")
  first = fields[next(iter(given))]
  if not storage.isfile(storage.join(workdir, SUMMARY_FILE)):
    raise ConfigError(f"{first}: judgements score a finished run, and "
                      f"--workdir {workdir} holds none (run the job, then "
                      "python -m jaxaudit.annotate)")
  if config.resume.shard_size <= 0:
    raise ConfigError(f"{first}: judgements are scored from the stored "
                      "shards; config.resume.shard_size must be > 0")
  identity = run_id(json.loads(config.to_json_best_effort(sort_keys=True)))
  key_path = config.study.key or storage.join(workdir, STUDY_DIR, KEY_FILE)
  key = _read_key(key_path)
  if key.run_id != identity:
    raise JudgementsError(f"{key_path}: the study key of another run (run_id "
                          f"{judgements_lib.show(key.run_id)}, this run is "
                          f"{identity!r})")
  specs = key_lib.task_specs(key)
  out = {}
  for stage, paths in given.items():
    kind = JUDGED_STAGES[stage]
    if not key.ids(kind):
      raise ConfigError(f"{fields[stage]}: the study {key_path} has no {kind} "
                        "tasks")
    judged = judgements_lib.load_many(paths, run_id=identity, tasks=specs)
    out[stage] = Study(key, tuple(judged), settings)
  return out
