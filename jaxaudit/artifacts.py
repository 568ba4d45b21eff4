"""Declared per-example artifacts: the only data that moves between stages.

Each stage declares what it produces (`ArtifactSpec`: a name such as
`evaluate.logits`, a shape whose leading axis is the examples, a dtype) and
what it consumes (`Need`). Before any compute, `plan` checks every need against
the stages listed before it in `config.stages`, and tells each producer which
of its artifacts later stages use. While the job runs, `Artifacts` holds what
was produced (process-local rows aligned with the dataset's ids, large ones as
memory-mapped `ShardedArray`s), checks each against its spec, and gives a stage
only what it declared.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import io
import json
from typing import Any, Iterable, Sequence

import numpy as np

from jaxaudit import storage
from jaxaudit.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ArtifactSpec:
  """Attributes:
    name: "<stage>.<what>[.<variant>]", e.g. "attack.adversarial.pgd_linf".
    shape: per-example shape (after the leading N axis); None for a dimension
      known only when the stage runs.
    dtype: NumPy dtype name.
    large: stored on disk and read back batch by batch (images, maps).
  """
  name: str
  shape: tuple[int | None, ...]
  dtype: str
  large: bool = False

  @property
  def stage(self) -> str:
    return self.name.split(".", 1)[0]

  def __str__(self) -> str:
    dims = ", ".join(["N"] + ["?" if d is None else str(d) for d in self.shape])
    return f"{self.name} [{dims}] {self.dtype}"


@dataclasses.dataclass(frozen=True)
class Need:
  """An artifact a stage consumes; `optional` ones it can do without, but
  whose producer, if listed, must run first."""
  name: str
  optional: bool = False

  @property
  def stage(self) -> str:
    return self.name.split(".", 1)[0]


@dataclasses.dataclass(frozen=True)
class Contract:
  """What a stage, configured, consumes and produces."""
  consumes: tuple[Need, ...] = ()
  produces: tuple[ArtifactSpec, ...] = ()


def plan(stages: Sequence[str], contracts: dict[str, Contract]
         ) -> dict[str, frozenset[str]]:
  """Checks the job's stage order against the stages' contracts.

  Args:
    stages: `config.stages`, in order.
    contracts: stage -> its `Contract` for this config and model.

  Returns:
    stage -> the names of its artifacts that later stages consume.

  Raises:
    ConfigError: a stage consumes an artifact no earlier stage produces,
      naming the stage to add or to move before it.
  """
  produced: dict[str, str] = {}
  declared = {spec.name: stage for stage in stages
              for spec in contracts[stage].produces}
  needed: dict[str, set[str]] = {stage: set() for stage in stages}
  for position, stage in enumerate(stages):
    for need in contracts[stage].consumes:
      if need.name in produced:
        needed[produced[need.name]].add(need.name)
        continue
      producer = declared.get(need.name, need.stage)
      if producer in stages[position:]:
        raise ConfigError(
            f"config.stages: '{stage}' uses {need.name} from '{producer}', "
            f"which runs after it; move '{producer}' before '{stage}'")
      if not need.optional:
        if producer in stages:
          raise ConfigError(
              f"config.stages: '{stage}' needs {need.name}, which '{producer}' "
              "does not produce with this config")
        raise ConfigError(f"config.stages: '{stage}' needs {need.name}; add "
                          f"'{producer}' before '{stage}'")
    for spec in contracts[stage].produces:
      produced[spec.name] = stage
  return {stage: frozenset(names) for stage, names in needed.items()}


class Artifacts:
  """Every artifact produced so far in the job, process-local.

  Values are arrays [n, ...] aligned with the dataset's ids, or
  `resume.ShardedArray`s for large ones.
  """

  def __init__(self, num_local: int):
    self._num_local = num_local
    self._values: dict[str, Any] = {}

  def add(self, spec: ArtifactSpec, value: Any) -> None:
    """Records a produced artifact after checking it against its spec."""
    shape, dtype = tuple(value.shape), np.dtype(value.dtype)
    fits = (len(shape) == len(spec.shape) + 1 and shape[0] == self._num_local
            and all(d is None or d == s for d, s in zip(spec.shape, shape[1:])))
    if not fits or dtype != np.dtype(spec.dtype):
      raise ValueError(f"stage {spec.stage} produced {spec.name} as "
                       f"{dtype} {shape}; its contract says {spec}")
    self._values[spec.name] = value

  def view(self, needs: Iterable[Need]) -> "ArtifactView":
    """What a stage declared it consumes (those produced), read-only."""
    names = {n.name for n in needs}
    return ArtifactView({k: v for k, v in self._values.items() if k in names},
                        names)


class ArtifactView:
  """A stage's read-only view: only the artifacts it declared."""

  def __init__(self, values: dict[str, Any], declared: set[str]):
    self._values = values
    self._declared = declared

  def __contains__(self, name: str) -> bool:
    return name in self._values

  def __getitem__(self, name: str) -> Any:
    if name not in self._declared:
      raise KeyError(f"{name} is not among the artifacts this stage declares "
                     "it consumes")
    return self._values[name]

  def get(self, name: str, default: Any = None) -> Any:
    return self[name] if name in self._values else default


def read_stored(workdir: str, name: str) -> tuple[np.ndarray, np.ndarray]:
  """A large artifact of a finished run, from its index files.

  Args:
    workdir: the job folder (a local path or a URL, `jaxaudit.storage`).
    name: e.g. "explain.map.integrated_gradients".

  Returns:
    (ids int64 [N], values [N, ...]) over every process's rows, by id.

  Raises:
    KeyError: the run stored no such artifact.
  """
  ids, values = [], []
  indexes = (fnmatch.filter(storage.listdir(workdir), "artifacts-p*.json")
             if storage.isdir(workdir) else [])
  for index_name in indexes:
    index = json.loads(storage.read_text(storage.join(workdir, index_name)))
    for _, _, path in index.get(name, []):
      full = storage.join(workdir, path)
      values.append(_read_npy(full))
      ids.append(_read_npy(storage.join(storage.dirname(full), "__ids__.npy")))
  if not values:
    raise KeyError(f"{workdir} holds no stored artifact {name}")
  ids, values = np.concatenate(ids), np.concatenate(values)
  order = np.argsort(ids, kind="stable")
  return ids[order], values[order]


def _read_npy(path: str) -> np.ndarray:
  return np.load(io.BytesIO(storage.read_bytes(path)), allow_pickle=False)
