"""The stage contract: configured, declared, and run over the job's examples.

A stage is a module `jaxaudit/stages/<name>.py` (the name is its config key)
with
  default_config() -> ml_collections.ConfigDict   its `config.<name>` section;
  check_config(config, model) -> None             raises ConfigError naming a
                                                  field, before any compute;
  contract(config, model) -> artifacts.Contract   what it consumes, produces;
  run(ctx: StageContext) -> StageOutput.
Its compute is a pure, jitted step run by `ctx.executor`; it reads other stages'
results only through `ctx.artifacts` (what it declared) and returns a summary,
per-example records, report sections and the artifacts it declared.
"""

from __future__ import annotations

import contextlib
import dataclasses
import zlib
from typing import Any, Iterator

import jax
from jax.sharding import Mesh
import ml_collections
import numpy as np

from jaxaudit.artifacts import ArtifactView
from jaxaudit.classes import LabelSpace
from jaxaudit.data.dataset import Dataset
from jaxaudit.errors import ConfigError, DataError, ParameterError
from jaxaudit.executor import Executor
from jaxaudit.models.classifier import Classifier, Params
from jaxaudit.report.items import Section
from jaxaudit.study.metrics import Study


NO_FEATURES = ("the model gives no features (return (logits, features) from "
               "apply_fn, or give a features_fn)")


def stage_rng(seed: int, name: str) -> jax.Array:
  """A stage's key depends on the seed and its name, not on the stage order."""
  return jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()))


@contextlib.contextmanager
def config_field(prefix: str) -> Iterator[None]:
  """Turns a method's `ParameterError` into a `ConfigError` naming
  `<prefix>.<parameter>` (e.g. config.attack.pgd_linf.loss)."""
  try:
    yield
  except ParameterError as e:
    raise ConfigError(f"{prefix}.{e.parameter}: {e.reason}") from e


@dataclasses.dataclass
class StageOutput:
  """What a stage produced.

  Attributes:
    summary: JSON-ready metrics, written as `summary.json[<stage>]`; identical
      on every process.
    records: process-local per-example columns (equal-length), written as
      `records/<stage>/part-<process>.parquet`; must hold an `id` column.
    sections: what report.html shows for this stage (rendered by process 0).
    artifacts: name -> process-local [n, ...] array (or `ShardedArray`), for
      every artifact in the stage's contract.
  """
  summary: dict[str, Any]
  records: dict[str, Any]
  sections: list[Section] = dataclasses.field(default_factory=list)
  artifacts: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class StageContext:
  """Everything a stage may use.

  Attributes:
    config: the whole job config; a stage reads `config.<stage>` (and the
      job-level sections: seed, batch_size, taxonomy).
    model: the classifier (pure functions of params and [0, 1] images).
    params: its params, replicated by the executor.
    labels: the job's label space (the model's classes), built once.
    data: this process's examples.
    mesh: the device mesh (axis `data`).
    rng: this stage's PRNG key (same on every process).
    executor: runs the stage's per-example steps (sharded, resumable).
    artifacts: the artifacts this stage declared it consumes.
    needed: names of this stage's artifacts that later stages consume.
    stage: the stage's name.
    checkpoint_dir: this stage's own folder in the workdir
      (`<workdir>/checkpoints/<stage>`, a local path or a URL) for state it
      resumes from other than per-example shards (e.g. model training
      checkpoints); created by whoever writes to it.
    study: people's judgements of this stage's study tasks, checked
      (`config.<stage>.judgements`, `jaxaudit.study_inputs`), or None.
  """
  config: ml_collections.ConfigDict
  model: Classifier
  params: Params
  labels: LabelSpace
  data: Dataset
  mesh: Mesh
  rng: jax.Array
  executor: Executor
  artifacts: ArtifactView
  needed: frozenset[str]
  stage: str
  checkpoint_dir: str
  study: Study | None = None

  @property
  def batch_size(self) -> int:
    """`config.<stage>.batch_size` where set (> 0), else `config.batch_size`."""
    own = self.config[self.stage].get("batch_size", 0)
    return int(own or self.config.batch_size)


def local_rows(global_ids: np.ndarray, local_ids: np.ndarray) -> np.ndarray:
  """Positions of this process's examples in arrays gathered by id.

  Args:
    global_ids: int [N] sorted ids of a gathered array.
    local_ids: int [n] ids of this process's examples (all in global_ids).

  Returns:
    int [n] row indices.
  """
  rows = np.searchsorted(global_ids, local_ids)
  if len(local_ids) and not np.array_equal(global_ids[rows], local_ids):
    raise ValueError("local examples missing from the gathered arrays")
  return rows


def study_rows(global_ids: np.ndarray, example_ids) -> np.ndarray:
  """Positions of a study's examples in arrays gathered by id.

  Args:
    global_ids: int [N] sorted ids of a gathered array.
    example_ids: the example ids of a study's tasks.

  Returns:
    int [T] row indices.

  Raises:
    DataError: the study names an example the run does not hold.
  """
  wanted = np.asarray(example_ids, np.int64)
  rows = np.minimum(np.searchsorted(global_ids, wanted),
                    max(len(global_ids) - 1, 0))
  if len(wanted) and (not len(global_ids)
                      or not np.array_equal(global_ids[rows], wanted)):
    raise DataError("the study names examples this run does not hold "
                    "(config.study.key)")
  return rows
