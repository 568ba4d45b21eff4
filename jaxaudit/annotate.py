"""Writes a human study page for a finished run.

  python -m jaxaudit.annotate --workdir=RUN [--seed=0] [--annotators=a,b,c]

reads the run in RUN (its config.json, summary.json, records and stored
artifacts), rebuilds its data as `pipeline.run` did, and writes
`RUN/study/study.html`, the offline page people answer (`jaxaudit.study.page`),
and `RUN/study/tasks.json`, the study's key: the run id, seed, annotators and
what each task shows (its kind, example, condition and choices). The key
says which subset tasks show SIS pixels and which random ones, so it stays
out of the page; do not hand it to annotators. The subset task ids are
digests keyed by the seed and a SHA-256 of the run's stored `sis.ranks`, which
the page does not hold, so its source does not tell the conditions apart.

Each kind of task comes from the stages that ran: "error" from evaluate,
"adversarial" from attack and explain (the adversarials of
`config.explain.adversarial_attack` at its largest epsilon, the first of
`config.explain.adversarial_methods` as the overlay), "subset" from sis (the
first of `config.sis.subset_fractions`). A kind whose stages did not run is
skipped with a logged note. No model output is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Sequence

from absl import app
from absl import flags
from absl import logging
import ml_collections
import numpy as np

from jaxaudit import api
from jaxaudit import artifacts
from jaxaudit import classes
from jaxaudit import files
from jaxaudit import pipeline
from jaxaudit import storage
from jaxaudit import study_inputs
from jaxaudit.data import dataset as dataset_lib
from jaxaudit.data import sources
from jaxaudit.errors import ConfigError, DataError, ParameterError
from jaxaudit.models import Classifier, Params, load_model
from jaxaudit.sis import masks
from jaxaudit.study import key as key_lib
from jaxaudit.study import page
from jaxaudit.study import tasks as tasks_lib

STUDY_DIR = study_inputs.STUDY_DIR
PAGE_FILE = "study.html"
KEY_FILE = study_inputs.KEY_FILE
SUMMARY_FILE = study_inputs.SUMMARY_FILE


class _Run:
  """A finished run read back: config, summary, data, class names."""

  def __init__(self, workdir: str,
               model: tuple[Classifier, Params] | None = None,
               source: sources.Source | None = None):
    config_path = storage.join(workdir, pipeline.CONFIG_FILE)
    summary_path = storage.join(workdir, SUMMARY_FILE)
    if not (storage.isfile(config_path) and storage.isfile(summary_path)):
      raise DataError(f"--workdir {workdir} is not a finished jaxaudit run "
                      f"(no {pipeline.CONFIG_FILE} and {SUMMARY_FILE})")
    self.workdir = workdir
    self.config_bytes = storage.read_bytes(config_path)
    self.config = ml_collections.ConfigDict(json.loads(self.config_bytes))
    self.summary = json.loads(storage.read_text(summary_path))
    classifier, params = (load_model(self.config.model) if model is None
                          else model)
    model_labels = (classes.LabelSpace.of(classifier.class_names)
                    if classifier.class_names else None)
    if source is None:
      source = sources.build_source(self.config.data, model_labels)
    self.model, labels, _ = pipeline.resolve_labels(
        classifier, params, model_labels, source, "config.model.name")
    self.class_names = self.model.class_names
    self.data = dataset_lib.build_dataset(
        self.config.data, source, classifier.preprocessing, labels,
        process_index=0, process_count=1)

  @property
  def run_id(self) -> str:
    """The run's id (`study_inputs.run_id` of config.json)."""
    return study_inputs.run_id(json.loads(self.config_bytes))

  def records(self, stage: str):
    """The stage's records, a pandas DataFrame sorted by id."""
    frame = api.AuditResult(self.workdir, self.summary).records(stage)
    return frame.sort_values("id", kind="stable").reset_index(drop=True)

  def images(self, ids: np.ndarray) -> np.ndarray:
    """uint8 [k, S, S, 3] the examples as the model saw them."""
    return self.data.fetch(ids)


def _rows(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
  """Positions of `wanted` in sorted `ids` (all present)."""
  rows = np.searchsorted(ids, wanted)
  if len(wanted) and not np.array_equal(ids[np.minimum(rows, len(ids) - 1)],
                                        wanted):
    raise DataError("the run's stored artifacts and records hold different "
                    "examples")
  return rows


def _to_uint8(images: np.ndarray) -> np.ndarray:
  """Float images in [0, 1] -> uint8."""
  return np.clip(np.round(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)


def _error_tasks(run: _Run, limit: int) -> tuple[list[page.Task], dict, dict]:
  evaluate = run.records("evaluate")
  ids = evaluate["id"].to_numpy(np.int64)
  labels = evaluate["label"].to_numpy(np.int64)
  top5 = np.stack(evaluate["top5"].to_numpy()).astype(np.int64)
  wrong = ids[(labels >= 0) & (top5[:, 0] != labels)][:limit]
  rows = _rows(ids, wrong)
  tasks = tasks_lib.error_tasks(wrong, run.images(wrong), labels[rows],
                                top5[rows], run.class_names, limit=limit)
  return tasks, {t.id: (int(i), None) for t, i in zip(tasks, wrong)}, {}


def _adversarial_tasks(run: _Run, limit: int
                       ) -> tuple[list[page.Task], dict, dict]:
  attack = run.config.explain.adversarial_attack
  methods = [m for m in run.config.explain.adversarial_methods.split(",") if m]
  if not attack or not methods:
    raise KeyError("config.explain names no adversarial attack or method")
  ids, adversarials = artifacts.read_stored(run.workdir,
                                            f"attack.adversarial.{attack}")
  map_ids, maps = artifacts.read_stored(
      run.workdir, f"explain.adversarial_map.{methods[0]}")
  records = run.records("attack")
  records = records[records["attack"] == attack]
  epsilon = records["epsilon"].max()
  records = records[records["epsilon"] == epsilon]
  record_ids = records["id"].to_numpy(np.int64)
  rows = _rows(record_ids, ids)
  success = records["success"].to_numpy(bool)[rows]
  chosen = np.flatnonzero(success)[:limit]
  tasks = tasks_lib.adversarial_tasks(
      ids[chosen], _to_uint8(adversarials[chosen]),
      records["adv_class"].to_numpy(np.int64)[rows][chosen],
      success[chosen], maps[_rows(map_ids, ids[chosen])], run.class_names,
      limit=limit)
  source = key_lib.AdversarialSource(
      attack, float(epsilon), str(records["epsilon_label"].iloc[0]),
      methods[0])
  return (tasks, {t.id: (int(i), None) for t, i in zip(tasks, ids[chosen])},
          {"adversarial": source})


def _subset_tasks(run: _Run, seed: int, limit: int
                  ) -> tuple[list[page.Task], dict, dict]:
  ids, ranks = artifacts.read_stored(run.workdir, "sis.ranks")
  ids, ranks = ids[:limit], ranks[:limit]
  top5 = labels = None
  if "evaluate" in run.summary:
    evaluate = run.records("evaluate")
    rows = _rows(evaluate["id"].to_numpy(np.int64), ids)
    top5 = np.stack(evaluate["top5"].to_numpy())[rows].astype(np.int64)
    labels = evaluate["label"].to_numpy(np.int64)[rows]
  cfg = run.config.sis
  try:
    block = masks.resolve_block_size(cfg.block_size, run.model.input_size)
    baseline = _to_uint8(masks.baseline_pixel(run.model, cfg.baseline))
  except ValueError as e:
    raise ConfigError(f"config.sis of {run.workdir}: {e}") from e
  key = f"{seed}:{hashlib.sha256(ranks.tobytes()).hexdigest()}"
  fraction = float(cfg.subset_fractions[0])
  tasks, hidden = tasks_lib.subset_tasks(
      ids, run.images(ids), ranks, run.class_names, block_size=block,
      fraction=fraction, baseline=baseline, seed=seed, key=key, limit=limit,
      top5=top5, labels=labels)
  return tasks, hidden, {"subset_fraction": fraction}


def _key(run: _Run, seed: int, annotators: Sequence[str],
         study: list[page.Task], hidden: dict, sources: dict
         ) -> key_lib.StudyKey:
  """The study's key: what each task shows, and the subset conditions."""
  tasks = {}
  for task in study:
    example, variant = hidden[task.id]
    tasks[task.id] = key_lib.KeyTask(
        task.kind, example, variant,
        tuple((int(i), n) for i, n in task.candidates),
        task.adversarial_class)
  return key_lib.StudyKey(run.run_id, seed, tuple(annotators), tasks,
                          **sources)


def write_study(workdir: str, out: str | None = None, *, seed: int = 0,
                annotators: Sequence[str] = (),
                max_per_kind: int = 100,
                model: tuple[Classifier, Params] | None = None,
                source: sources.Source | None = None) -> str:
  """Writes the study page and its key for a finished run.

  Args:
    workdir: the run's folder (local).
    out: the folder for study.html and tasks.json (default <workdir>/study).
    seed: the study's seed (task orders, overlay conditions, random subsets).
    annotators: the declared annotator ids, in order.
    max_per_kind: at most this many tasks of each kind (subset tasks come in
      pairs: max_per_kind // 2 images).
    model: (classifier, params) the run audited, when it was given in memory
      (`pipeline.run`'s model; `jaxaudit.write_study` checks it is the run's).
    source: the examples the run audited, when given in memory.

  Returns:
    The page's path.

  Raises:
    DataError: `workdir` is not a finished run, or holds nothing to judge.
    ConfigError, ParameterError: a bad setting of the run or the study.
  """
  if max_per_kind < 2:
    raise ConfigError(f"max_per_kind must be >= 2, got {max_per_kind}")
  run = _Run(workdir, model, source)
  builders = {
      "error": (("evaluate",), lambda: _error_tasks(run, max_per_kind)),
      "adversarial": (("attack", "explain"),
                      lambda: _adversarial_tasks(run, max_per_kind)),
      "subset": (("sis",), lambda: _subset_tasks(run, seed,
                                                 max_per_kind // 2)),
  }
  study, hidden, sources = [], {}, {}
  for kind, (stages, build) in builders.items():
    missing = [s for s in stages if s not in run.summary]
    if missing:
      logging.info("no %s tasks: stage %s did not run in %s", kind,
                   ", ".join(missing), workdir)
      continue
    try:
      kind_tasks, kind_hidden, kind_source = build()
    except KeyError as e:
      logging.info("no %s tasks: %s", kind, e)
      continue
    logging.info("%d %s tasks", len(kind_tasks), kind)
    study += kind_tasks
    hidden.update(kind_hidden)
    if kind_tasks:
      sources.update(kind_source)
  if not study:
    raise DataError(f"--workdir {workdir}: nothing to judge (needs top-1 "
                    "errors from evaluate, successful adversarials from "
                    "attack and explain, or sis subsets)")
  out = out or os.path.join(workdir, STUDY_DIR)
  os.makedirs(out, exist_ok=True)
  path = os.path.join(out, PAGE_FILE)
  page.write_page(path, study, run_id=run.run_id, seed=seed,
                  annotators=list(annotators),
                  title=f"{page.DEFAULT_TITLE}: {run.config.report.title}")
  files.write_json(os.path.join(out, KEY_FILE),
                   key_lib.to_json(_key(run, seed, annotators, study, hidden,
                                        sources)))
  return path


def define_flags() -> None:
  """The command line's flags (not at import: `jaxaudit.main` defines its
  own --workdir, and both modules may be imported in one process)."""
  flags.DEFINE_string("workdir", None, "A finished run's folder.")
  flags.DEFINE_integer("seed", 0, "The study's seed.")
  flags.DEFINE_list("annotators", [], "Declared annotator ids.")
  flags.DEFINE_integer("max_per_kind", 100,
                       "At most this many tasks of each kind.")


def main(argv: Sequence[str]) -> None:
  """Writes the study of --workdir; prints the page's path."""
  del argv
  values = flags.FLAGS
  if not values.workdir:
    sys.exit("error: --workdir is required, e.g. --workdir=/tmp/jaxaudit")
  try:
    path = write_study(values.workdir, seed=values.seed,
                       annotators=values.annotators,
                       max_per_kind=values.max_per_kind)
  except (ConfigError, DataError, ParameterError) as e:
    sys.exit(f"error: {e}")
  print(path)


if __name__ == "__main__":
  define_flags()
  app.run(main)
