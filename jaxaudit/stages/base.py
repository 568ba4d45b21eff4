"""The stage contract: built from its config section, returns metrics and records.

A stage is a module `jaxaudit/stages/<name>.py` with
`run(ctx: StageContext) -> StageOutput`. Its compute is a pure, jitted function of
(params, batch, rng) run through `jaxaudit.sharding.map_batches`; the stage turns
the per-example outputs into a summary (JSON), per-example records (one row per
example, or per example x variant) and report sections.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from typing import Any, Callable

import jax
from jax.sharding import Mesh
import ml_collections
import numpy as np

from jaxaudit import resume
from jaxaudit import sharding
from jaxaudit.data.dataset import Dataset
from jaxaudit.models.classifier import Classifier, Params
from jaxaudit.report.sections import Section


def stage_rng(seed: int, name: str) -> jax.Array:
  """A stage's key depends on the seed and its name, not on the stage order."""
  return jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()))


@dataclasses.dataclass
class StageOutput:
  """What a stage produced.

  Attributes:
    summary: JSON-ready metrics, written as `summary.json[<stage>]`. Identical on
      every process (computed from `sharding.gather_to_all` results).
    records: process-local per-example columns (equal-length 1-D arrays or
      lists), written as `records/<stage>/part-<process>.parquet`; must hold an
      `id` column (the global example id).
    sections: what report.html shows for this stage (rendered by process 0).
    arrays: per-example arrays over all processes, sorted by `id`, for later
      stages of the same job (e.g. the attack stage's adversarial images).
  """
  summary: dict[str, Any]
  records: dict[str, Any]
  sections: list[Section] = dataclasses.field(default_factory=list)
  arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class StageContext:
  """Everything a stage may use.

  Attributes:
    config: the whole job config; a stage reads mainly `config.<stage>`.
    model: the classifier (pure functions of params and [0, 1] images).
    params: its Flax variables, replicated by `map_batches`.
    data: this process's examples.
    mesh: the device mesh (axis `data`).
    rng: this stage's PRNG key (same on every process).
    workdir: the job's output folder.
    outputs: earlier stages' outputs in this job, by stage name.
    cache: arrays computed once per job and shared by stages (the forward pass).
    stage: the name of the stage being run.
  """
  config: ml_collections.ConfigDict
  model: Classifier
  params: Params
  data: Dataset
  mesh: Mesh
  rng: jax.Array
  workdir: str
  outputs: dict[str, StageOutput]
  cache: dict[str, Any] = dataclasses.field(default_factory=dict)
  stage: str = ""

  def map_batches(self, name: str, fn: Callable[[Any, sharding.Batch],
                                                 sharding.Batch],
                  state: Any, inputs: dict[str, np.ndarray],
                  batch_size: int | None = None) -> dict[str, np.ndarray]:
    """`sharding.map_batches` over this job's examples, resumable.

    Args:
      name: a name unique within the stage for this computation (e.g.
        "pgd_linf"); results of finished shards are stored under it in the
        workdir and reloaded when a killed job is run again.
      fn, state, inputs: as in `sharding.map_batches`; `inputs` are
        process-local arrays aligned with `self.data` ([n, ...]).
      batch_size: global batch size (default `config.batch_size`).

    Returns:
      fn's outputs for the process-local examples, NumPy [n, ...].
    """
    batch_size = batch_size or self.config.batch_size
    shard_size = self.config.resume.shard_size
    if shard_size <= 0:
      return sharding.map_batches(fn, state, inputs, mesh=self.mesh,
                                  batch_size=batch_size, desc=name)
    root = os.path.join(self.workdir, "shards", self.stage, name)
    return resume.map_batches_resumable(
        fn, state, inputs, self.data.ids, mesh=self.mesh, batch_size=batch_size,
        root=root, shard_size=shard_size,
        fail_after_shards=self.config.resume.fail_after_shards, desc=name)
