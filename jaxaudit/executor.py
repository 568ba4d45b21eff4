"""The one executor of per-example work: sharded, resumable, gathered on request.

A stage hands `Executor.run` a pure step `(state, batch) -> {output: [B, ...]}`
and process-local inputs (arrays, or `resume.ShardedArray`s of an earlier
stage's large artifacts); it gets back every output for its process's examples.
Behind it: batches laid over the device mesh (`sharding.map_batches`), shards
of `config.resume.shard_size` examples committed to disk and skipped on restart
(each step compiled once per batch shape however many times the stage maps it,
and each array of its state placed on the mesh once per stage)
(`resume.ShardStore`), and, for outputs named in `keep_on_disk`, memory-mapped
handles instead of arrays, so no host holds a large artifact whole. Cross-host
views are explicit: `gather` (all processes' rows, by id), `top` (the k best
rows over all processes, from each process's own k best), `sum_counts` and
`reduce` (reductions) and `rows_of` (a few rows by global id).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Callable

from absl import logging
import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh
import numpy as np

from jaxaudit import resume
from jaxaudit import sharding

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
Outputs = dict[str, "np.ndarray | resume.ShardedArray"]


class Executor:
  """Runs per-example steps over this process's examples.

  Attributes:
    mesh: the device mesh.
    ids: int64 [n] this process's global example ids (sorted).
  """

  def __init__(self, mesh: Mesh, ids: np.ndarray, root: str, shard_size: int):
    """Args:
      mesh: the device mesh (axis `data`).
      ids: this process's global example ids, sorted.
      root: folder of this stage's shards (`<workdir>/shards/<stage>`).
      shard_size: process-local examples per resumable shard (0: no resume;
        outputs are still written, as one shard, for `keep_on_disk`).
    """
    self.mesh = mesh
    self.ids = np.asarray(ids, np.int64)
    self._root = root
    self._shard_size = shard_size
    self._steps: dict[Callable, Callable] = {}
    self._placed: dict[int, tuple[Any, Any]] = {}

  def for_examples(self, ids: np.ndarray, name: str) -> "Executor":
    """An executor of the same mesh and shard size over other examples (a
    stage's second dataset, e.g. a natural shift set), its shards in the
    subfolder `name` of this one's.

    Args:
      ids: int [m] this process's global ids in that dataset, sorted.
      name: the subfolder (letters, digits, `_.-`).
    """
    if not _NAME.match(name):
      raise ValueError(f"executor: folder name {name!r}")
    return Executor(self.mesh, ids, os.path.join(self._root, name),
                    self._shard_size)

  def _compiled(self, step: Callable) -> Callable:
    """`step` jitted for the mesh, once per function."""
    if step not in self._steps:
      self._steps[step] = sharding.compile_step(step, self.mesh)
    return self._steps[step]

  def _place(self, state: Any) -> Any:
    """`state` replicated on the mesh; a JAX array already placed by this
    executor (the params, on every call of a stage) is reused, not copied."""

    target = sharding.replicated(self.mesh)

    def place(leaf):
      if not isinstance(leaf, jax.Array):
        return sharding.put_global(leaf, target)
      held = self._placed.get(id(leaf))
      if held is None or held[0] is not leaf:
        held = (leaf, sharding.put_global(leaf, target))
        self._placed[id(leaf)] = held
      return held[1]

    return jax.tree.map(place, state)

  def run(self, name: str, step: Callable[[Any, sharding.Batch],
                                           sharding.Batch],
          state: Any, inputs: dict[str, Any], *, batch_size: int,
          keep_on_disk: tuple[str, ...] = (),
          ids: np.ndarray | None = None) -> Outputs:
    """`step` over every local example, in resumable shards.

    Args:
      name: unique within the stage; names the shard folder.
      step: pure `(state, batch) -> {output: [B, ...]}`; `batch` holds each
        input sliced to [B, ...] and `mask` (False on padding rows).
      state: pytree replicated on every device (params, keys, ...).
      inputs: process-local per-example inputs [n, ...] (arrays or
        `ShardedArray`s).
      batch_size: global batch size (rounded up to the device count).
      keep_on_disk: outputs returned as `ShardedArray` handles.
      ids: int [m] global ids of the input rows when they are a subset of
        this process's examples (e.g. those still robust); default all.

    Returns:
      {output: [n, ...]} for this process's examples (or the m given).
    """
    if not _NAME.match(name):
      raise ValueError(f"executor: computation name {name!r}")
    ids = self.ids if ids is None else np.asarray(ids, np.int64)
    local_n = len(ids)
    resumable = self._shard_size > 0
    shard_size = self._shard_size if resumable else max(
        1, sharding.max_over_processes(local_n))
    num_shards = max(1, math.ceil(sharding.max_over_processes(local_n)
                                  / shard_size))
    store = resume.ShardStore(os.path.join(self._root, name),
                              jax.process_index(), reuse=resumable)
    bounds = [(k * shard_size, min((k + 1) * shard_size, local_n))
              for k in range(num_shards)]
    have = np.asarray([store.has(k, ids[lo:hi])
                       for k, (lo, hi) in enumerate(bounds)])
    done = _all_processes(have)
    parts: list[dict[str, str]] = []
    if not done.all():
      logging.info("%s: %d of %d shards to compute, batches of %d", name,
                   int((~done).sum()), num_shards, batch_size)
      compiled, state = self._compiled(step), self._place(state)
    for k, (lo, hi) in enumerate(bounds):
      if done[k]:
        parts.append(store.load(k))
        continue
      rows = {key: value[lo:hi] for key, value in inputs.items()}
      out = sharding.map_batches(compiled, state, rows, mesh=self.mesh,
                                 batch_size=batch_size,
                                 desc=f"{name} shard {k + 1}/{num_shards}")
      for key in out:
        if not _NAME.match(key):
          raise ValueError(f"executor: output name {key!r}")
      parts.append(store.save(k, ids[lo:hi], out))
    return self._assemble(parts, bounds, keep_on_disk)

  @staticmethod
  def _assemble(parts: list[dict[str, str]], bounds: list[tuple[int, int]],
                keep_on_disk: tuple[str, ...]) -> Outputs:
    outputs: Outputs = {}
    for key in parts[0]:
      pieces = [(lo, hi, part[key]) for (lo, hi), part in zip(bounds, parts)]
      first = resume.open_npy(pieces[0][2])
      shape = (bounds[-1][1],) + first.shape[1:]
      array = resume.ShardedArray(pieces, shape, first.dtype)
      outputs[key] = array if key in keep_on_disk else array.read()
    return outputs

  def gather(self, columns: dict[str, np.ndarray],
             ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every process's rows of local per-example `columns` [n, ...], sorted by
    global id, plus `id` (a collective: every process calls it). `ids`: the
    global ids of the rows when they are a subset of this process's examples
    (as given to `run`); default all."""
    return sharding.gather_to_all(columns, self.ids if ids is None else ids)

  def top(self, columns: dict[str, np.ndarray], score: np.ndarray,
          k: int) -> dict[str, np.ndarray]:
    """The k rows of local `columns` [n, ...] with the highest `score` [n]
    over all processes (ties: lowest id first), plus `id` and `score`; only
    each process's own k best travel (a collective)."""
    score = np.asarray(score, np.float64)
    order = np.lexsort((self.ids, -score))[:k]
    local = {key: np.asarray(value)[order] for key, value in columns.items()}
    local["score"] = score[order]
    best = sharding.gather_to_all(local, self.ids[order])
    order = np.lexsort((best["id"], -best["score"]))[:k]
    return {key: value[order] for key, value in best.items()}

  def sum_counts(self, counts: np.ndarray) -> np.ndarray:
    """Every process's int array `counts` summed elementwise (an all-reduce:
    a collective, every process calls it)."""
    return sharding.sum_counts(counts, self.mesh)

  def reduce(self, value: float, op: str = "sum") -> float:
    """One number from every process combined ("sum", "min" or "max")."""
    if jax.process_count() == 1:
      return float(value)
    values = np.asarray(multihost_utils.process_allgather(
        np.asarray(value, np.float64)))
    return float({"sum": np.sum, "min": np.min, "max": np.max}[op](values))

  def rows_of(self, array: Any, ids: np.ndarray) -> np.ndarray:
    """Rows of a process-local per-example array for a few global ids, from
    whichever process holds them, on every process (a collective)."""
    ids = np.asarray(ids, np.int64)
    local = np.isin(ids, self.ids)
    positions = np.searchsorted(self.ids, ids[local])
    rows = np.stack([np.asarray(array[int(p):int(p) + 1])[0]
                     for p in positions]) if local.any() else None
    shape = tuple(array.shape[1:])
    out = np.zeros((len(ids),) + shape, array.dtype)
    if rows is not None:
      out[local] = rows
    if jax.process_count() == 1:
      return out
    owners = np.asarray(multihost_utils.process_allgather(local))
    values = np.asarray(multihost_utils.process_allgather(out))
    return values[owners.argmax(axis=0), np.arange(len(ids))]


def _all_processes(flags: np.ndarray) -> np.ndarray:
  if jax.process_count() == 1:
    return flags
  return np.asarray(multihost_utils.process_allgather(flags)).all(axis=0)
