"""`jaxaudit.audit(...)`: a whole audit from Python, as the command line runs it.

  result = jaxaudit.audit(classifier, params, images=x, labels=y,
                          stages="evaluate,attack,explain")
  result.summary["attack"]["robust_accuracy"]
  result.records("evaluate")  # a pandas DataFrame
  # Several models side by side, compared per example:
  result = jaxaudit.audit(models={"base": (clf_a, params_a),
                                  "fix": (clf_b, params_b)},
                          ensemble={"members": "base,fix"}, images=x,
                          labels=y, stages="evaluate,attack,sis")
  result.summary["compare"]; result.records("compare")
  result.records("attack", model="fix")
  result.report_path          # report.html
  jaxaudit.write_study(result, ...)  # a human study page (jaxaudit.annotate)

`python -m jaxaudit.main` is a thin layer over the same `pipeline.run`, so the
same config, model and data give the same summary.json either way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tempfile
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxaudit import job_config
from jaxaudit import pipeline
from jaxaudit import storage
from jaxaudit.data import sources
from jaxaudit.errors import ConfigError
from jaxaudit.models import Classifier, Params


@dataclasses.dataclass(frozen=True)
class AuditResult:
  """What an audit wrote.

  Attributes:
    workdir: the job folder (summary.json, records/, report.html).
    summary: summary.json as a dict, one key per stage.
  """
  workdir: str
  summary: dict

  @property
  def report_path(self) -> str:
    return storage.join(self.workdir, "report.html")

  def records(self, stage: str, model: str | None = None):
    """The stage's per-example records as a pandas DataFrame (the workdir a
    local folder or a URL, `jaxaudit.storage`).

    Args:
      stage: a stage name, or "compare" (several models: one row per
        example, every model's prediction, transfer and SIS overlap).
      model: with several models, whose stage records (its name in
        `config.models`, or the ensemble's).
    """
    import pandas as pd  # pylint: disable=g-import-not-at-top
    root = (self.workdir if model is None
            else storage.join(self.workdir, pipeline.MODELS, model))
    folder = storage.join(root, "records", stage)
    if not storage.isdir(folder):
      ran = (self.summary.get("models", {}).get(model, {}) if model
             else self.summary)
      raise ValueError(f"no records for stage '{stage}'"
                       + (f" of model '{model}'" if model else "")
                       + f" in {self.workdir}; stages run: {', '.join(ran)}")
    parts = [storage.join(folder, name) for name in storage.listdir(folder)
             if name.startswith("part-")]
    if parts and parts[0].endswith(".jsonl"):
      frames = [pd.read_json(io.StringIO(storage.read_text(p)), lines=True)
                for p in parts]
    else:
      frames = [pd.read_parquet(io.BytesIO(storage.read_bytes(p)))
                for p in parts]
    return pd.concat(frames, ignore_index=True)


def _fingerprint(tree: Any) -> str:
  digest = hashlib.sha1()
  for leaf in jax.tree.leaves(tree):
    array = np.asarray(leaf)
    digest.update(f"{array.dtype}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
  return digest.hexdigest()[:16]


def _apply_overrides(config: ml_collections.ConfigDict,
                     overrides: dict[str, Any], prefix: str = "") -> None:
  """Sets `overrides` ({"attack.pgd_linf.steps": 5} or nested dicts) on config,
  refusing unknown fields as the command line does."""
  for key, value in overrides.items():
    path = f"{prefix}{key}"
    head, _, rest = key.partition(".")
    if head not in config:
      raise ConfigError(f"config.{prefix}{head}: no such field")
    if rest:
      _apply_overrides(config[head], {rest: value}, f"{prefix}{head}.")
    elif isinstance(value, dict) and isinstance(config[head],
                                                ml_collections.ConfigDict):
      _apply_overrides(config[head], value, f"{path}.")
    else:
      try:
        config[head] = value
      except (TypeError, ValueError) as e:
        raise ConfigError(f"config.{path}: {e}") from e


def audit(classifier: Classifier | None = None, params: Params | None = None,
          *, images: np.ndarray | None = None, labels: np.ndarray | None = None,
          files: list[str] | None = None, data: Any = None,
          models: dict[str, tuple[Classifier, Params]] | None = None,
          stages: str | list[str] = "evaluate", workdir: str | None = None,
          config: ml_collections.ConfigDict | None = None,
          **overrides: Any) -> AuditResult:
  """Audits a classifier on a dataset; returns the summary, records and report.

  Args:
    classifier: the model (None: `config.model`'s).
    params: its params (required with `classifier`).
    images: uint8 [N, H, W, 3] (or float in [0, 1]) to audit, in memory.
    labels: int [N] their classes (-1 = unknown), with `images`.
    files: [N] names for the records (default `images[i]`).
    data: instead of `images`: a TFDS dataset name, or a dict of `config.data`
      fields ({"dir": ...}, {"npz": ...}, {"tfds_name": ..., "split": ...}).
    models: instead of `classifier`: name -> (classifier, params), audited
      side by side on the same examples and compared per example (with
      `ensemble={"members": "a,b"}`, their ensemble too); summary
      {"models": {name: ...}, "compare": ...}.
    stages: "evaluate,attack,..." or a list of stage names.
    workdir: the output folder (None: a new temporary folder).
    config: a starting config (default: `job_config.base_config()`).
    **overrides: config fields, dotted ({"attack.pgd_linf.steps": 5}) or as
      nested dicts (`attack={"attacks": "pgd_linf"}`), e.g. `batch_size=16`.

  Returns:
    An `AuditResult`.

  Raises:
    ConfigError / DataError: bad arguments, naming the field or file.
  """
  config = (job_config.base_config() if config is None
            else ml_collections.ConfigDict(config.to_dict()))
  config.stages = stages if isinstance(stages, str) else ",".join(stages)
  _apply_overrides(config, overrides)
  source = None
  if images is not None:
    if data is not None:
      raise ConfigError("audit: give images or data, not both")
    source = sources.ArraySource(images, labels, files)
    config.data.fingerprint = _fingerprint([source.images, source.labels])
  elif isinstance(data, str):
    config.data.tfds_name = data
  elif data is not None:
    _apply_overrides(config.data, dict(data), "data.")
  model = None
  for name, (member, member_params) in (models or {}).items():
    config.models[name] = job_config.model_section(
        name=f"<in memory: {member.name}>",
        fingerprint=_fingerprint(member_params))
  if classifier is not None:
    if models:
      raise ConfigError("audit: give a classifier or models, not both")
    if params is None:
      raise ConfigError("audit: give the classifier's params")
    model = (classifier, params)
    config.model.name = f"<in memory: {classifier.name}>"
    config.model.fingerprint = _fingerprint(params)
  workdir = workdir or tempfile.mkdtemp(prefix="jaxaudit-")
  summary = pipeline.run(config, workdir, model=model, source=source,
                         models=models)
  return AuditResult(workdir=workdir, summary=json.loads(json.dumps(summary)))


def write_study(result: AuditResult | str, classifier: Classifier | None = None,
                params: Params | None = None, *,
                images: np.ndarray | None = None,
                labels: np.ndarray | None = None,
                files: list[str] | None = None, seed: int = 0,
                annotators: list[str] | tuple[str, ...] = (),
                max_per_kind: int = 100) -> str:
  """The human study page of a finished audit, as `python -m jaxaudit.annotate`.

    result = jaxaudit.audit(classifier, params, images=x, labels=y,
                            stages="evaluate,attack,explain,sis")
    page = jaxaudit.write_study(result, classifier, params, images=x,
                                labels=y, annotators=["a", "b", "c"])
    # ... people answer; then the same audit on result.workdir with
    # mistakes={"judgements": "people/"} (and attack, sis) scores them.

  Args:
    result: the audit (or its workdir).
    classifier, params: the model, when the audit was given it in memory.
    images, labels, files: the examples, when given in memory.
    seed: the study's seed.
    annotators: the declared annotator ids.
    max_per_kind: at most this many tasks of each kind.

  Returns:
    The page's path (`<workdir>/study/study.html`; the key beside it).

  Raises:
    ConfigError: the model or examples given are not the audited ones.
    DataError: the folder holds no finished audit.
  """
  from jaxaudit import annotate  # pylint: disable=g-import-not-at-top
  workdir = result.workdir if isinstance(result, AuditResult) else result
  path = storage.join(workdir, pipeline.CONFIG_FILE)
  recorded = (json.loads(storage.read_text(path)) if storage.isfile(path)
              else {})
  model = source = None
  if classifier is not None:
    if params is None:
      raise ConfigError("write_study: give the classifier's params")
    if _fingerprint(params) != recorded.get("model", {}).get("fingerprint"):
      raise ConfigError(f"write_study: these params are not the ones audited "
                        f"in {workdir}")
    model = (classifier, params)
  if images is not None:
    source = sources.ArraySource(images, labels, files)
    if (_fingerprint([source.images, source.labels])
        != recorded.get("data", {}).get("fingerprint")):
      raise ConfigError(f"write_study: these images or labels are not the "
                        f"ones audited in {workdir}")
  return annotate.write_study(workdir, seed=seed, annotators=annotators,
                              max_per_kind=max_per_kind, model=model,
                              source=source)
