"""Wires a job: config -> model, data, plan -> stages -> records, summary, report.

Before any compute the job is checked whole: the stage names, every stage's
config section (`check_config`), and the plan of artifacts (`artifacts.plan`:
each stage consumes only what a stage listed before it produces). Then each
stage runs with its own executor and sees only the artifacts it declared; what
it produces is checked against its contract before the next stage starts.
"""

from __future__ import annotations

import json
import os

from absl import logging
import jax
import ml_collections

from jaxaudit import artifacts as artifacts_lib
from jaxaudit import classes
from jaxaudit import files
from jaxaudit import records as records_lib
from jaxaudit import sharding
from jaxaudit import storage
from jaxaudit import study_inputs
from jaxaudit import summary as summary_lib
from jaxaudit.data import dataset as dataset_lib
from jaxaudit.data import sources
from jaxaudit.errors import ConfigError
from jaxaudit.executor import Executor
from jaxaudit.models import Classifier, Params, check_fits, load_model
from jaxaudit.models.classifier import ModelDims
from jaxaudit.report import html as report_html
from jaxaudit.report import items as rs
from jaxaudit.stages import STAGES
from jaxaudit.stages.base import StageContext, StageOutput, config_field
from jaxaudit.stages.base import stage_rng
from jaxaudit.taxonomy import judgement

CONFIG_FILE = "config.json"
ARTIFACT_INDEX = "artifacts-p{:05d}.json"  # Per process: its rows' files.
CHECKPOINTS = "checkpoints"  # <workdir>/checkpoints/<stage>: a stage's own state.
# Stages that judge labels with `config.taxonomy`.
TAXONOMY_STAGES = frozenset({"attack", "mistakes", "criticism"})


def parse_stages(config: ml_collections.ConfigDict) -> list[str]:
  """`config.stages` ("evaluate,attack") -> validated stage names."""
  return STAGES.parse(config.stages)


def _check_workdir(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Refuses a workdir (a local folder or a URL, `jaxaudit.storage`) that holds
  results of a different config; the fields that only carry judgements in
  (`study_inputs.STUDY_FIELDS`) may differ."""
  path = storage.join(workdir, CONFIG_FILE)
  resolved = json.loads(config.to_json_best_effort(sort_keys=True))
  if storage.exists(path):
    previous = json.loads(storage.read_text(path))
    changed = sorted(f for f in _diff(previous, resolved)
                     if not study_inputs.is_study_field(f))
    if changed:
      raise ConfigError(
          f"--workdir {workdir} holds results of another config (differs in "
          f"{', '.join(changed[:5])}); use a new workdir or delete it")
  if jax.process_index() == 0:
    files.write_json(path, resolved)


def _diff(a, b, prefix=""):
  if isinstance(a, dict) and isinstance(b, dict):
    for key in set(a) | set(b):
      yield from _diff(a.get(key), b.get(key), f"{prefix}{key}.")
  elif a != b:
    yield prefix.rstrip(".")


def resolve_labels(classifier: Classifier, params: Params,
                   model_labels: classes.LabelSpace | None,
                   source: sources.Source, field: str
                   ) -> tuple[Classifier, classes.LabelSpace, ModelDims]:
  """The job's label space, the classifier with its class names settled, and
  its output dimensions.

  The label space is the model's (`model_labels`); a model that declares no
  names takes the data's (class subfolders, TFDS label names, an .npz's
  `classes`), else `class_0` ... `class_{K-1}`. The data's labels are mapped
  onto it by `dataset.build_dataset`; the source is not changed.

  Raises:
    ConfigError: the model's outputs do not fit its params or its names, or
      the data's class count differs from a nameless model's K.
  """
  num_classes, feature_dim = check_fits(classifier, params, field)
  labels = model_labels
  if labels is None:
    names = source.class_names or classes.numbered_names(num_classes)
    if len(names) != num_classes:
      raise ConfigError(f"{field}: the model outputs {num_classes} logits and "
                        f"declares no class names; the data has {len(names)} "
                        "classes")
    labels = classes.LabelSpace.of(names)
    classifier = classifier.with_class_names(labels.names)
  return (classifier, labels,
          ModelDims(num_classes, feature_dim, classifier.input_size))


def plan(config: ml_collections.ConfigDict, stage_names: list[str],
         dims: ModelDims) -> tuple[dict, dict[str, frozenset[str]]]:
  """Every stage's config checked and its contract; the artifacts each
  stage's successors need (raises ConfigError naming the stage or field)."""
  contracts = {}
  for name in stage_names:
    stage = STAGES.get(name)
    stage.check_config(config, dims)
    contracts[name] = stage.contract(config, dims)
  return contracts, artifacts_lib.plan(stage_names, contracts)


def _check_output(name: str, output: StageOutput,
                  contract: artifacts_lib.Contract, needed: frozenset[str],
                  store: artifacts_lib.Artifacts) -> None:
  """Adds a stage's artifacts to the job's, as its contract declares them."""
  specs = {spec.name: spec for spec in contract.produces}
  undeclared = sorted(set(output.artifacts) - set(specs))
  missing = sorted(n for n, spec in specs.items()
                   if n not in output.artifacts and (not spec.large
                                                     or n in needed))
  if undeclared or missing:
    raise ValueError(f"stage {name} broke its contract: undeclared "
                     f"{undeclared}, missing {missing}")
  for key, value in output.artifacts.items():
    store.add(specs[key], value)


def _artifact_index(outputs: dict[str, StageOutput], workdir: str) -> dict:
  """Where each large artifact's rows lie on disk (tools such as
  `jaxaudit.annotate` read finished runs through it)."""
  index = {}
  for output in outputs.values():
    for key, value in output.artifacts.items():
      parts = getattr(value, "parts", None)
      if parts is not None:
        index[key] = [[a, b, storage.relpath(p, workdir)] for a, b, p in parts]
  return index


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
  model_labels = (classes.LabelSpace.of(classifier.class_names)
                  if classifier.class_names else None)
  if source is None:
    source = sources.build_source(config.data, model_labels)
  classifier, labels, dims = resolve_labels(classifier, params, model_labels,
                                            source, "config.model.name")
  contracts, needed = plan(config, stage_names, dims)
  studies = study_inputs.load(config, workdir, stage_names)
  _check_workdir(workdir, config)
  mesh = sharding.make_mesh()
  data = dataset_lib.build_dataset(config.data, source,
                                   classifier.preprocessing, labels)
  logging.info("process %d/%d: %d local examples on %d devices",
               jax.process_index(), jax.process_count(), len(data), mesh.size)
  if set(stage_names) & TAXONOMY_STAGES:
    with config_field("config.taxonomy"):  # Checked before any compute.
      judgement.build(config.taxonomy, labels, data)
  store = artifacts_lib.Artifacts(len(data))
  outputs: dict[str, StageOutput] = {}
  for name in stage_names:
    logging.info("stage %s", name)
    executor = Executor(mesh, data.ids, os.path.join(workdir, "shards", name),
                        config.resume.shard_size)
    ctx = StageContext(config=config, model=classifier, params=params,
                       labels=labels, data=data, mesh=mesh, rng=stage_rng(config.seed, name),
                       executor=executor,
                       artifacts=store.view(contracts[name].consumes),
                       needed=needed[name], stage=name,
                       checkpoint_dir=storage.join(workdir, CHECKPOINTS, name),
                       study=studies.get(name))
    output = STAGES.get(name).run(ctx)
    _check_output(name, output, contracts[name], needed[name], store)
    records_lib.write_records(workdir, name, output.records, jax.process_index(),
                              jax.process_count(), config.records.format)
    outputs[name] = output
  summary = {name: out.summary for name, out in outputs.items()}
  if jax.process_index() == 0:
    summary_lib.write_json(os.path.join(workdir, "summary.json"), summary)
    header = [rs.Table([{
        "model": classifier.name, "data": _data_name(config.data, source),
        "examples": data.num_selected, "stages": ", ".join(stage_names),
        "seed": config.seed}])]
    if data.skipped:
      header.append(rs.Text("Skipped undecodable files: "
                            + ", ".join(data.skipped[:20])))
    report_html.render(workdir, config.report.title, header,
                       [s for out in outputs.values() for s in out.sections])
  index = _artifact_index(outputs, workdir)
  if index:
    files.write_json(os.path.join(
        workdir, ARTIFACT_INDEX.format(jax.process_index())), index)
  return summary_lib.to_json(summary)


def _data_name(data_config, source: sources.Source) -> str:
  if isinstance(source, sources.ArraySource):
    return f"{len(source)} images in memory"
  for field in sources.DATA_FIELDS:
    if data_config.get(field):
      return f"{field}={data_config[field]}"
  return "scikit-image demo photos"
