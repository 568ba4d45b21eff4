"""Wires a job: config -> mesh, model, data -> stages -> records, summary, report."""

from __future__ import annotations

import json
import os

from absl import logging
import jax
import ml_collections

from jaxaudit import records as records_lib
from jaxaudit import sharding
from jaxaudit import summary as summary_lib
from jaxaudit.data import dataset as dataset_lib
from jaxaudit.data import sources
from jaxaudit import classes
from jaxaudit.errors import ConfigError
from jaxaudit.models import Classifier, Params, check_fits, load_model
from jaxaudit.report import html as report_html
from jaxaudit.report import sections as rs
from jaxaudit.stages import STAGES
from jaxaudit.stages.base import StageContext, StageOutput, stage_rng

CONFIG_FILE = "config.json"
# Fields that may differ between a killed run and its resumption.
_RESUME_EXEMPT = ("resume.fail_after_shards",)


def parse_stages(config: ml_collections.ConfigDict) -> list[str]:
  """`config.stages` ("evaluate,attack") -> validated stage names."""
  if not isinstance(config.stages, str):
    raise ConfigError(f"config.stages must be a comma-separated string, got "
                      f"{type(config.stages).__name__}")
  names = [s.strip() for s in config.stages.split(",") if s.strip()]
  if not names:
    raise ConfigError("config.stages is empty; valid: " + ", ".join(STAGES.names()))
  for name in names:
    STAGES.check(name)
  if len(set(names)) != len(names):
    raise ConfigError(f"config.stages lists a stage twice: {config.stages}")
  return names


def _check_workdir(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Refuses a workdir that holds results of a different config."""
  path = os.path.join(workdir, CONFIG_FILE)
  resolved = json.loads(config.to_json_best_effort(sort_keys=True))
  if os.path.exists(path):
    with open(path) as f:
      previous = json.load(f)
    changed = sorted(k for k in _diff(previous, resolved)
                     if k not in _RESUME_EXEMPT)
    if changed:
      raise ConfigError(
          f"--workdir {workdir} holds results of another config (differs in "
          f"{', '.join(changed[:5])}); use a new workdir or delete it")
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    summary_lib.write_json(path, resolved)


def _diff(a, b, prefix=""):
  if isinstance(a, dict) and isinstance(b, dict):
    for key in set(a) | set(b):
      yield from _diff(a.get(key), b.get(key), f"{prefix}{key}.")
  elif a != b:
    yield prefix.rstrip(".")


def resolve_model(classifier: Classifier, params: Params,
                  source: sources.Source, field: str) -> Classifier:
  """The classifier with its class names settled and the data's labels
  aligned to them (see `sources.align_labels`).

  A model that declares no names takes the data's (class subfolders, TFDS
  label names, an .npz's `classes`), else `class_0` ... `class_{K-1}`.

  Raises:
    ConfigError: the model's outputs do not fit its params or its names, or
      the data's class count differs from a nameless model's K.
  """
  num_classes, _ = check_fits(classifier, params, field)
  if classifier.class_names is None:
    names = source.class_names or classes.numbered_names(num_classes)
    if len(names) != num_classes:
      raise ConfigError(f"{field}: the model outputs {num_classes} logits and "
                        f"declares no class names; the data has {len(names)} "
                        "classes")
    classifier = classifier.with_class_names(names)
  sources.align_labels(source, classifier.class_names)
  return classifier


def run(config: ml_collections.ConfigDict, workdir: str,
        model: tuple[Classifier, Params] | None = None,
        source: sources.Source | None = None) -> dict:
  """Runs `config.stages` and writes summary.json, records/ and report.html.

  Args:
    config: the job config.
    workdir: the output folder.
    model: (classifier, params) to audit instead of `config.model`'s.
    source: the examples to audit instead of `config.data`'s source.

  Returns:
    The summary (as written to summary.json).
  """
  stage_names = parse_stages(config)
  if config.batch_size <= 0:
    raise ConfigError(f"config.batch_size must be > 0, got {config.batch_size}")
  if config.records.format not in records_lib.FORMATS:
    raise ConfigError(f"config.records.format: unknown '{config.records.format}';"
                      " valid: " + ", ".join(records_lib.FORMATS))
  classifier, params = load_model(config.model) if model is None else model
  if source is None:
    source = sources.build_source(config.data, classifier.class_names)
  model = resolve_model(classifier, params, source, "config.model.name")
  _check_workdir(workdir, config)
  mesh = sharding.make_mesh()
  data = dataset_lib.build_dataset(config.data, source, model.preprocessing)
  logging.info("process %d/%d: %d local examples on %d devices",
               jax.process_index(), jax.process_count(), len(data), mesh.size)
  outputs: dict[str, StageOutput] = {}
  ctx = StageContext(config=config, model=model, params=params, data=data,
                     mesh=mesh, rng=stage_rng(config.seed, ""), workdir=workdir,
                     outputs=outputs)
  for name in stage_names:
    logging.info("stage %s", name)
    ctx.rng = stage_rng(config.seed, name)
    ctx.stage = name
    output = STAGES.get(name)(ctx)
    records_lib.write_records(workdir, name, output.records, jax.process_index(),
                              jax.process_count(), config.records.format)
    outputs[name] = output
  summary = {name: out.summary for name, out in outputs.items()}
  if jax.process_index() == 0:
    summary_lib.write_json(os.path.join(workdir, "summary.json"), summary)
    header = [rs.Table([{
        "model": model.name, "data": _data_name(config.data, source),
        "examples": data.num_selected, "stages": ", ".join(stage_names),
        "seed": config.seed}])]
    if data.skipped:
      header.append(rs.Text("Skipped undecodable files: "
                            + ", ".join(data.skipped[:20])))
    report_html.render(workdir, config.report.title, header,
                       [s for out in outputs.values() for s in out.sections])
  return summary_lib.to_json(summary)


def _data_name(data_config, source: sources.Source) -> str:
  if isinstance(source, sources.ArraySource):
    return f"{len(source.files)} images in memory"
  for field in ("dir", "npz", "tfds_name"):
    if data_config.get(field):
      return f"{field}={data_config[field]}"
  return "scikit-image demo photos"
