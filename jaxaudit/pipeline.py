"""Wires a job: config -> model, data, plan -> stages -> records, summary, report.

Before any compute the job is checked whole: the stage names, every stage's
config section (`check_config`), and the plan of artifacts (`artifacts.plan`:
each stage consumes only what a stage listed before it produces). Then each
stage runs with its own executor and sees only the artifacts it declared; what
it produces is checked against its contract before the next stage starts.
"""

from __future__ import annotations

import dataclasses
import json
import os

from absl import logging
import jax
import ml_collections

from jaxaudit import artifacts as artifacts_lib
from jaxaudit import classes
from jaxaudit import compare
from jaxaudit import compile_count
from jaxaudit import files
from jaxaudit import model_set
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
MODELS = "models"  # <workdir>/models/<name>: each compared model's own run.
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

  The label space is `model_labels` (the model's, or those of the models
  compared with it); a model that declares no names takes it, or with none
  the data's (class subfolders, TFDS label names, an .npz's
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
  if classifier.class_names is None:
    if len(labels.names) != num_classes:
      raise ConfigError(f"{field}: the model outputs {num_classes} logits and "
                        "declares no class names; the models beside it have "
                        f"{len(labels.names)} classes")
    classifier = classifier.with_class_names(labels.names)
  return (classifier, labels,
          ModelDims(num_classes, feature_dim, classifier.input_size))


def plan(config: ml_collections.ConfigDict, stage_names: list[str],
         dims: ModelDims, compare_step: bool = False
         ) -> tuple[dict, dict[str, frozenset[str]]]:
  """Every stage's config checked and its contract; the artifacts each
  stage's successors need (raises ConfigError naming the stage or field).
  With `compare_step`, the comparison of several models (`jaxaudit.compare`)
  runs after the stages and consumes from them too (its contract is
  `contracts["compare"]`)."""
  contracts = {}
  for name in stage_names:
    stage = STAGES.get(name)
    stage.check_config(config, dims)
    contracts[name] = stage.contract(config, dims)
  order = list(stage_names)
  if compare_step:
    contracts["compare"] = compare.contract(
        {spec.name for c in contracts.values() for spec in c.produces})
    order.append("compare")
  return contracts, artifacts_lib.plan(order, contracts)


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


def _check_job(config: ml_collections.ConfigDict) -> list[str]:
  """The job-level fields every run checks first; returns the stage names."""
  stage_names = parse_stages(config)
  if config.batch_size <= 0:
    raise ConfigError(f"config.batch_size must be > 0, got {config.batch_size}")
  if config.records.format not in records_lib.FORMATS:
    raise ConfigError(f"config.records.format: unknown '{config.records.format}';"
                      " valid: " + ", ".join(records_lib.FORMATS))
  return stage_names


def _run_stages(config: ml_collections.ConfigDict, workdir: str,
                stage_names: list[str], classifier: Classifier, params: Params,
                labels: classes.LabelSpace, data: dataset_lib.Dataset,
                mesh, contracts: dict, needed: dict[str, frozenset[str]],
                studies: dict) -> tuple[dict[str, StageOutput],
                                        artifacts_lib.Artifacts]:
  """Runs the stages of one model over `data`, writing each stage's records
  into `workdir`; returns their outputs and the artifacts they produced."""
  store = artifacts_lib.Artifacts(len(data))
  outputs: dict[str, StageOutput] = {}
  for name in stage_names:
    logging.info("stage %s (%s)", name, classifier.name)
    executor = Executor(mesh, data.ids, os.path.join(workdir, "shards", name),
                        config.resume.shard_size)
    ctx = StageContext(config=config, model=classifier, params=params,
                       labels=labels, data=data, mesh=mesh,
                       rng=stage_rng(config.seed, name), executor=executor,
                       artifacts=store.view(contracts[name].consumes),
                       needed=needed[name], stage=name,
                       checkpoint_dir=storage.join(workdir, CHECKPOINTS, name),
                       study=studies.get(name))
    with compile_count.counting() as stats:
      output = STAGES.get(name).run(ctx)
    output = dataclasses.replace(output, summary=_with_timing(output.summary,
                                                              stats))
    logging.info("stage %s (%s): %s", name, classifier.name, stats.line())
    _check_output(name, output, contracts[name], needed[name], store)
    records_lib.write_records(workdir, name, output.records, jax.process_index(),
                              jax.process_count(), config.records.format)
    outputs[name] = output
  return outputs, store


def _with_timing(summary: dict, stats: compile_count.CompileStats) -> dict:
  """The stage's summary with its compilations and seconds in `timing`
  (beside what the stage put there itself): the one part of summary.json
  that differs between two runs of the same job."""
  return {**summary, "timing": {**summary.get("timing", {}),
                                **stats.as_dict()}}


def _write_results(workdir: str, title: str, summary: dict,
                   header: list[rs.Item], sections: list[rs.Section],
                   outputs: dict[str, StageOutput]) -> None:
  """summary.json and report.html (process 0), and this process's index of
  where the large artifacts lie."""
  if jax.process_index() == 0:
    summary_lib.write_json(os.path.join(workdir, "summary.json"), summary)
    report_html.render(workdir, title, header, sections)
  index = _artifact_index(outputs, workdir)
  if index:
    files.write_json(os.path.join(
        workdir, ARTIFACT_INDEX.format(jax.process_index())), index)


def _header(config: ml_collections.ConfigDict, model_name: str,
            source: sources.Source, data: dataset_lib.Dataset,
            stage_names: list[str]) -> list[rs.Item]:
  header: list[rs.Item] = [rs.Table([{
      "model": model_name, "data": _data_name(config.data, source),
      "examples": data.num_selected, "stages": ", ".join(stage_names),
      "seed": config.seed}])]
  if data.skipped:
    header.append(rs.Text("Skipped undecodable files: "
                          + ", ".join(data.skipped[:20])))
  return header


def _check_taxonomy(config: ml_collections.ConfigDict, stage_names: list[str],
                    labels: classes.LabelSpace,
                    data: dataset_lib.Dataset) -> None:
  if set(stage_names) & TAXONOMY_STAGES:
    with config_field("config.taxonomy"):  # Checked before any compute.
      judgement.build(config.taxonomy, labels, data)


def run(config: ml_collections.ConfigDict, workdir: str,
        model: tuple[Classifier, Params] | None = None,
        source: sources.Source | None = None,
        models: dict[str, tuple[Classifier, Params]] | None = None) -> dict:
  """Runs `config.stages` and writes summary.json, records/ and report.html.

  With several models (`config.models`), each runs the stages into
  `<workdir>/models/<name>/` and the comparison joins them (`run_models`).

  Args:
    config: the job config.
    workdir: the output folder.
    model: (classifier, params) to audit instead of `config.model`'s.
    source: the examples to audit instead of `config.data`'s source.
    models: name -> (classifier, params) given in memory for those of
      `config.models`.

  Returns:
    The summary (as written to summary.json).
  """
  stage_names = _check_job(config)
  if len(config.models):
    return run_models(config, workdir, stage_names, source, models or {})
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
  _check_taxonomy(config, stage_names, labels, data)
  outputs, _ = _run_stages(config, workdir, stage_names, classifier, params,
                           labels, data, mesh, contracts, needed, studies)
  summary = {name: out.summary for name, out in outputs.items()}
  _write_results(workdir, config.report.title, summary,
                 _header(config, classifier.name, source, data, stage_names),
                 [s for out in outputs.values() for s in out.sections],
                 outputs)
  return summary_lib.to_json(summary)


def _same_classes(prepared: list[tuple[model_set.Member, Classifier,
                                       classes.LabelSpace, ModelDims]]
                  ) -> classes.LabelSpace:
  """The label space every model shares (ConfigError naming two that
  differ)."""
  first, _, labels, _ = prepared[0]
  for member, _, other, _ in prepared[1:]:
    if other.names != labels.names:
      raise ConfigError(
          f"{first.field} and {member.field} have different class lists "
          f"({len(labels.names)} classes: {', '.join(labels.names[:3])}, ... "
          f"vs {len(other.names)}: {', '.join(other.names[:3])}, ...); "
          "compare models of the same classes")
  return labels


def run_models(config: ml_collections.ConfigDict, workdir: str,
               stage_names: list[str], source: sources.Source | None,
               given: dict[str, tuple[Classifier, Params]]) -> dict:
  """Several models (and their ensemble) on the same examples, compared.

  The source is built once; each model sees the same example ids,
  preprocessed its own way, runs every stage into `<workdir>/models/<name>/`
  (its summary.json, records, report.html), and `jaxaudit.compare` joins
  them per example into `<workdir>/summary.json` ({"models": {name: its
  summary}, "compare": ...}), `records/compare/` and report.html.

  Raises:
    ConfigError: a model that fails to load (naming `config.models.<name>`),
      models of different classes (naming both), an ensemble that cannot be
      built, or human-study judgements (they score single-model runs).
  """
  judged = [f"config.{stage}.judgements" for stage in study_inputs.JUDGED_STAGES
            if config[stage].judgements]
  if judged:
    raise ConfigError(f"{judged[0]}: a human study scores a single model's "
                      "run; run it on one model (config.model)")
  members = model_set.load_members(config, given)
  named = next((m.classifier for m in members if m.classifier.class_names),
               None)
  model_labels = classes.LabelSpace.of(named.class_names) if named else None
  if source is None:
    source = sources.build_source(config.data, model_labels)
  prepared = []
  for member in members:
    own = (classes.LabelSpace.of(member.classifier.class_names)
           if member.classifier.class_names else model_labels)
    classifier, labels, dims = resolve_labels(
        member.classifier, member.params, own, source, f"{member.field}.name")
    prepared.append((member, classifier, labels, dims))
  labels = _same_classes(prepared)
  plans = [plan(config, stage_names, dims, compare_step=True)
           for _, _, _, dims in prepared]
  _check_workdir(workdir, config)
  mesh = sharding.make_mesh()
  first = dataset_lib.build_dataset(config.data, source,
                                    prepared[0][1].preprocessing, labels)
  logging.info("process %d/%d: %d local examples on %d devices, %d models",
               jax.process_index(), jax.process_count(), len(first), mesh.size,
               len(members))
  _check_taxonomy(config, stage_names, labels, first)
  runs = []
  for (member, classifier, _, _), (contracts, needed) in zip(prepared, plans):
    data = dataclasses.replace(first, prep=classifier.preprocessing)
    folder = storage.join(workdir, MODELS, member.name)
    outputs, store = _run_stages(config, folder, stage_names, classifier,
                                 member.params, labels, data, mesh, contracts,
                                 needed, {})
    summary = summary_lib.to_json({n: o.summary for n, o in outputs.items()})
    _write_results(folder, f"{config.report.title}: {member.name}", summary,
                   _header(config, member.name, source, data, stage_names)
                   + [rs.Link("The comparison of every model",
                              "../../report.html")],
                   [s for out in outputs.values() for s in out.sections],
                   outputs)
    view = store.view(contracts["compare"].consumes)
    runs.append(compare.ModelRun(
        member.name, classifier, member.params, data,
        {n.name: view[n.name] for n in contracts["compare"].consumes
         if n.name in view}, summary, member.members))
  logging.info("comparing %d models", len(runs))
  output = compare.run(config, runs, Executor(
      mesh, first.ids, os.path.join(workdir, "shards", "compare"),
      config.resume.shard_size))
  records_lib.write_records(workdir, "compare", output.records,
                            jax.process_index(), jax.process_count(),
                            config.records.format)
  summary = {"models": {r.name: r.summary for r in runs},
             "compare": output.summary}
  header = _header(config, ", ".join(r.name for r in runs), source, first,
                   stage_names)
  sizes = {m.name: c.input_size for m, c, _, _ in prepared}
  header.append(rs.Table([_model_row(config, m, c, sizes)
                          for m, c, _, _ in prepared], title="Models"))
  _write_results(workdir, config.report.title, summary, header,
                 output.sections, {})
  return summary_lib.to_json(summary)


def _model_row(config: ml_collections.ConfigDict, member: model_set.Member,
               classifier: Classifier, sizes: dict[str, int]) -> dict:
  """A model's line in the comparison's header; an ensemble's states its
  common input and its members' sizes."""
  if member.members:
    what = (f"ensemble of {', '.join(member.members)} (mean probability); "
            f"its {classifier.input_size}px input goes to each member "
            "resized to its own size: " + ", ".join(
                f"{m} {sizes[m]}px" for m in member.members))
  else:
    section = config.models[member.name]
    what = f"{section.name} {section.checkpoint or '(shipped weights)'}"
  return {"model": member.name, "field": member.field,
          "input": f"{classifier.input_size}px", "what": what}


def _data_name(data_config, source: sources.Source) -> str:
  if isinstance(source, sources.ArraySource):
    return f"{len(source)} images in memory"
  for field in sources.DATA_FIELDS:
    if data_config.get(field):
      return f"{field}={data_config[field]}"
  return "scikit-image demo photos"
