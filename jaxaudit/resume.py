"""Resumable stage work: finished shards of examples are kept and never recomputed.

A stage computation (`StageContext.map_batches`) is cut into shards of
`config.resume.shard_size` process-local examples. Each finished shard is written
atomically (temporary file + rename) and then listed in the process's manifest
(also replaced atomically), so a job killed at any point finds on restart exactly
the shards that were complete: none is lost, recomputed or counted twice. A shard
is skipped only when every process has it, so all processes keep running the same
collective steps.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable

import jax
from jax.experimental import multihost_utils
import numpy as np

from jaxaudit import sharding

MANIFEST = "manifest-p{:05d}.json"


class ShardStore:
  """One process's finished shards of one computation, under `root`."""

  def __init__(self, root: str, process_index: int):
    self.root = root
    self.manifest_path = os.path.join(root, MANIFEST.format(process_index))
    self.process_index = process_index
    self.finished: dict[str, str] = {}
    if os.path.isfile(self.manifest_path):
      with open(self.manifest_path) as f:
        self.finished = json.load(f)["shards"]

  def has(self, shard: int, ids: np.ndarray) -> bool:
    """True if the shard is listed and its file holds exactly these ids."""
    name = self.finished.get(str(shard))
    if name is None or not os.path.isfile(os.path.join(self.root, name)):
      return False
    with np.load(os.path.join(self.root, name), allow_pickle=False) as npz:
      return np.array_equal(npz["__ids__"], ids)

  def load(self, shard: int) -> dict[str, np.ndarray]:
    with np.load(os.path.join(self.root, self.finished[str(shard)]),
                 allow_pickle=False) as npz:
      return {k: npz[k] for k in npz.files if k != "__ids__"}

  def save(self, shard: int, ids: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
    os.makedirs(self.root, exist_ok=True)
    name = f"shard-{shard:05d}-p{self.process_index:05d}.npz"
    tmp = os.path.join(self.root, f".{name}.tmp.npz")
    np.savez(tmp, __ids__=ids, **arrays)
    os.replace(tmp, os.path.join(self.root, name))
    self.finished[str(shard)] = name
    tmp = f"{self.manifest_path}.tmp"
    with open(tmp, "w") as f:
      json.dump({"shards": self.finished}, f, sort_keys=True)
    os.replace(tmp, self.manifest_path)


def _all_processes(flags: np.ndarray) -> np.ndarray:
  if jax.process_count() == 1:
    return flags
  return np.asarray(multihost_utils.process_allgather(flags)).all(axis=0)


def map_batches_resumable(
    fn: Callable[[Any, sharding.Batch], sharding.Batch], state: Any,
    inputs: dict[str, np.ndarray], ids: np.ndarray, *, mesh, batch_size: int,
    root: str, shard_size: int, fail_after_shards: int = 0,
    desc: str = "") -> dict[str, np.ndarray]:
  """`sharding.map_batches` in shards stored under `root`.

  Args:
    fn, state, inputs, mesh, batch_size, desc: as in `sharding.map_batches`.
    ids: int [n] global ids of the process-local rows (checked on reload).
    root: folder of this computation's shards.
    shard_size: process-local examples per shard (> 0).
    fail_after_shards: fault injection for tests: after computing this many
      shards the process exits abruptly (0 = never).

  Returns:
    fn's outputs for the n process-local examples, NumPy [n, ...].
  """
  local_n = len(ids)
  num_shards = max(1, math.ceil(sharding.max_over_processes(local_n) / shard_size))
  store = ShardStore(root, jax.process_index())
  bounds = [(k * shard_size, min((k + 1) * shard_size, local_n))
            for k in range(num_shards)]
  have = np.asarray([store.has(k, ids[lo:hi]) for k, (lo, hi) in enumerate(bounds)])
  done = _all_processes(have)
  parts, computed = [], 0
  for k, (lo, hi) in enumerate(bounds):
    if done[k]:
      parts.append(store.load(k))
      continue
    rows = {key: value[lo:hi] for key, value in inputs.items()}
    out = sharding.map_batches(fn, state, rows, mesh=mesh, batch_size=batch_size,
                               desc=f"{desc} shard {k + 1}/{num_shards}")
    store.save(k, ids[lo:hi], out)
    parts.append(out)
    computed += 1
    if fail_after_shards and computed >= fail_after_shards and k + 1 < num_shards:
      os._exit(75)  # Simulates a kill: no cleanup, no flush.
  return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
