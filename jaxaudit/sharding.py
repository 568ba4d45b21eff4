"""Exact data-parallel execution over a device mesh, on one host or many.

Every stage's per-example computation runs through `map_batches`: the process-local
examples are cut into batches of a fixed global size, the last one padded (and its
padding masked out of the results), each batch laid out over the mesh's `data` axis
with a `NamedSharding`; `compile_step` jits the function once, and it compiles once
per batch shape however often it is mapped. Every
process runs the same number of steps, so collectives line up on a pod, and every
example is computed exactly once.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np
import tqdm

from jaxaudit import compile_options

DATA_AXIS = "data"

Batch = dict[str, Any]


def make_mesh() -> Mesh:
  """A 1-D mesh over every device of every process, axis name `data`."""
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Shards the leading (batch) axis over the mesh."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def put_global(tree: Any, target: NamedSharding) -> Any:
  """Places a pytree that every process holds identically onto `target`.

  On one process this is `jax.device_put`; across processes `device_put` refuses
  shardings with devices of other hosts, so each leaf is built with
  `jax.make_array_from_callback` from this process's copy (PRNG keys included).
  A leaf already laid out over `target`'s mesh (`shard_rows`) stays as it is.
  """

  def put(leaf):
    if isinstance(leaf, jax.Array) and isinstance(
        leaf.sharding, NamedSharding) and leaf.sharding.mesh == target.mesh:
      return leaf
    if jax.process_count() == 1:
      return jax.device_put(leaf, target)
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(
        leaf.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(put(jax.random.key_data(leaf)),
                                      impl=jax.random.key_impl(leaf))
    value = np.asarray(leaf)
    return jax.make_array_from_callback(value.shape, target,
                                        lambda index: value[index])

  return jax.tree.map(put, tree)


def shard_rows(local: np.ndarray, mesh: Mesh, fill: Any = 0) -> jax.Array:
  """Every process's rows [n_p, ...] as one global array sharded over the
  mesh's `data` axis, each process's rows on its own devices (none copied to
  another host), in process order; each process pads its rows with `fill` to
  the same multiple of its device count.

  Returns:
    [P * n_pad, ...] (a collective: every process calls it).
  """
  local = np.asarray(local)
  per_process = len(mesh.local_devices)
  n_pad = max(1, math.ceil(max_over_processes(len(local)) / per_process)) * (
      per_process)
  padded = np.full((n_pad,) + local.shape[1:], fill, local.dtype)
  padded[:len(local)] = local
  return jax.make_array_from_process_local_data(batch_sharding(mesh), padded)


def max_over_processes(value: int) -> int:
  """The largest `value` of any process (a collective: every process calls it)."""
  if jax.process_count() == 1:
    return int(value)
  return int(np.max(multihost_utils.process_allgather(np.int64(value))))


def sum_counts(counts: np.ndarray, mesh: Mesh) -> np.ndarray:
  """Elementwise sum of every process's int array `counts` (same shape on
  all): an all-reduce on the mesh, so no process receives another's array.

  Returns:
    int64 array, the same on every process.
  """
  counts = np.asarray(counts, np.int64)
  if jax.process_count() == 1:
    return counts
  if counts.size and np.abs(counts).max() >= 2**31:
    raise ValueError("sum_counts: counts must fit in int32")
  rows = np.zeros((len(mesh.local_devices),) + counts.shape, np.int32)
  rows[0] = counts
  stacked = jax.make_array_from_process_local_data(batch_sharding(mesh), rows)
  total = jax.jit(lambda x: x.sum(0), out_shardings=replicated(mesh))(stacked)
  return np.asarray(total.addressable_data(0)).astype(np.int64)


def round_batch_size(batch_size: int, mesh: Mesh) -> int:
  """The smallest multiple of the device count that is >= `batch_size`."""
  return max(mesh.size, int(math.ceil(batch_size / mesh.size)) * mesh.size)


def process_slice(num_examples: int, process_index: int,
                  process_count: int) -> tuple[int, int]:
  """[start, stop) of this process's examples; sizes differ by at most one."""
  base, extra = divmod(num_examples, process_count)
  start = process_index * base + min(process_index, extra)
  return start, start + base + (1 if process_index < extra else 0)


def _local_rows(array: jax.Array) -> np.ndarray:
  """This process's rows of a batch-sharded global array, in global order."""
  shards = {}
  for shard in array.addressable_shards:
    start = (shard.index[0].start or 0) if shard.index else 0
    shards.setdefault(start, np.asarray(shard.data))
  return np.concatenate([shards[k] for k in sorted(shards)], axis=0)


def compile_step(fn: Callable[[Any, Batch], Batch],
                 mesh: Mesh) -> Callable[[Any, Batch], Batch]:
  """`fn` jitted with batch-sharded outputs, for `map_batches`; keep it to map
  `fn` again without recompiling (`jaxaudit.executor.Executor` does).

  Args:
    fn: pure function of (state, batch) -> dict of per-example arrays with a
      leading batch axis. `batch` holds each input sliced to `[B, ...]` plus
      `mask` (bool [B], False on padding rows).
    mesh: the device mesh.
  """
  return compile_options.jit(fn, out_shardings=batch_sharding(mesh))


def map_batches(step: Callable[[Any, Batch], Batch], state: Any,
                inputs: dict[str, np.ndarray], *, mesh: Mesh, batch_size: int,
                desc: str = "") -> dict[str, np.ndarray]:
  """Applies `step(state, batch)` to every process-local example, batch-sharded.

  Args:
    step: a function of (state, batch) from `compile_step`.
    state: a pytree replicated on every device (model params, PRNG keys, ...);
      leaves already placed on the mesh (`put_global`) are not copied again.
    inputs: process-local per-example inputs with a common leading axis
      [n, ...]: arrays, row-sliceable columns (`resume.ShardedArray`), or
      streamed columns with a `batches(rows)` iterator
      (`jaxaudit.data.images.ImageColumn`), read one batch ahead.
    mesh: the device mesh; the batch axis is sharded over `data`.
    batch_size: global batch size, rounded up to a multiple of the device count.
    desc: progress-bar label (shown on process 0 only).

  Returns:
    `step`'s outputs for the n process-local examples, as NumPy arrays [n, ...].
  """
  global_batch = round_batch_size(batch_size, mesh)
  local_batch = global_batch // jax.process_count()
  local_n = len(next(iter(inputs.values())))
  num_steps = max(1, math.ceil(max_over_processes(local_n) / local_batch))
  sharding = batch_sharding(mesh)
  state = put_global(state, replicated(mesh))

  readers = {key: _row_batches(value, local_batch)
             for key, value in inputs.items()}

  def make_batch(i: int) -> Batch:
    rows = max(0, min(local_batch, local_n - i * local_batch))
    batch = {}
    for key, value in inputs.items():
      chunk = np.zeros((local_batch,) + tuple(value.shape[1:]), value.dtype)
      if rows:
        chunk[:rows] = next(readers[key])
      batch[key] = chunk
    mask = np.zeros((local_batch,), bool)
    mask[:rows] = True
    batch["mask"] = mask
    return {k: jax.make_array_from_process_local_data(sharding, v)
            for k, v in batch.items()}

  outputs: list[dict[str, np.ndarray]] = []
  pending = None
  progress = tqdm.tqdm(total=num_steps, desc=desc or "batches", leave=False,
                       disable=jax.process_index() != 0 or num_steps < 2)
  for i in range(num_steps):
    result = step(state, make_batch(i))
    if pending is not None:
      outputs.append(jax.tree.map(_local_rows, pending))
      progress.update()
    pending = result
  outputs.append(jax.tree.map(_local_rows, pending))
  progress.update()
  progress.close()
  return {k: np.concatenate([o[k] for o in outputs])[:local_n]
          for k in outputs[0]}


def _row_batches(value: Any, rows: int) -> Iterator[np.ndarray]:
  """Consecutive [<= rows, ...] chunks of a per-example input."""
  if hasattr(value, "batches"):
    return iter(value.batches(rows))
  return (np.asarray(value[lo:lo + rows]) for lo in range(0, len(value), rows))


def process_mesh() -> Mesh:
  """Every device in a [process, local device] grid (axes `process`, `local`),
  for moving rows between processes."""
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  return Mesh(np.asarray(devices).reshape(jax.process_count(), -1),
              ("process", "local"))


def exchange(local: dict[str, np.ndarray],
             destination: np.ndarray) -> dict[str, np.ndarray]:
  """Sends each local row to the process `destination` names (an all-to-all:
  every process receives only the rows sent to it).

  Args:
    local: process-local columns [n, ...] (numbers; cast to 32 bits on the
      way, as JAX does without x64).
    destination: int [n] the receiving process of each row; -1 = none.

  Returns:
    The rows this process received, by sending process then in the sender's
    order (so rows in global id order stay in it). A collective: every
    process calls it.
  """
  destination = np.asarray(destination)
  count = jax.process_count()
  if count == 1:
    keep = destination == 0
    return {k: np.asarray(v)[keep] for k, v in local.items()}
  sends = [np.flatnonzero(destination == q) for q in range(count)]
  width = max(1, max_over_processes(max(len(s) for s in sends)))
  mesh = process_mesh()
  by_sender = NamedSharding(mesh, P("process"))
  by_receiver = NamedSharding(mesh, P(None, "process"))

  def block(value: np.ndarray) -> np.ndarray:
    """[1, receivers, width, ...]: the rows for each receiver, padded."""
    if value.dtype.itemsize == 8 and value.dtype.kind in "iuf":
      value = value.astype(f"{value.dtype.kind}4")
    out = np.zeros((1, count, width) + value.shape[1:], value.dtype)
    for q, rows in enumerate(sends):
      out[0, q, :len(rows)] = value[rows]
    return out

  blocks = {k: block(np.asarray(v)) for k, v in local.items()}
  blocks["_valid"] = block(np.ones(len(destination), bool))
  sent = {k: jax.make_array_from_process_local_data(by_sender, v)
          for k, v in blocks.items()}
  received = jax.jit(lambda tree: tree, out_shardings=by_receiver)(sent)
  out = {k: np.asarray(v.addressable_data(0))[:, 0] for k, v in received.items()}
  keep = out.pop("_valid")
  return {k: v[keep] for k, v in out.items()}


def gather_to_all(local: dict[str, np.ndarray],
                  ids: np.ndarray) -> dict[str, np.ndarray]:
  """All processes' rows of `local`, ordered by global example id.

  Args:
    local: process-local per-example arrays [n_local, ...].
    ids: int [n_local] global ids of those rows.

  Returns:
    The same keys with every process's rows, sorted by id, plus `id`.
  """
  local = dict(local, id=np.asarray(ids))
  if jax.process_count() == 1:
    order = np.argsort(local["id"], kind="stable")
    return {k: np.asarray(v)[order] for k, v in local.items()}
  n_local = len(ids)
  max_local = max_over_processes(n_local)
  padded = {}
  for key, value in local.items():
    value = np.asarray(value)
    chunk = np.zeros((max_local,) + value.shape[1:], value.dtype)
    chunk[:n_local] = value
    padded[key] = chunk
  valid = np.zeros((max_local,), bool)
  valid[:n_local] = True
  padded["_valid"] = valid
  gathered = {k: np.asarray(multihost_utils.process_allgather(v, tiled=True))
              for k, v in padded.items()}
  keep = gathered.pop("_valid")
  gathered = {k: v[keep] for k, v in gathered.items()}
  order = np.argsort(gathered["id"], kind="stable")
  return {k: v[order] for k, v in gathered.items()}


def example_keys(rng: jax.Array, ids: jax.Array) -> jax.Array:
  """One PRNG key per example, from its global id [B] -> keys [B].

  Keys depend on the example, not on its batch or device, so random results are
  identical on 1 device, 8 devices or several processes.
  """
  return jax.vmap(lambda i: jax.random.fold_in(rng, i))(ids)
