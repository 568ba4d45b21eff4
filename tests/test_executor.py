"""Executor: every example computed exactly once with padding masked, for any
example count, batch size and shard size; committed shards reused on restart;
the same outputs on 1 and on 8 devices.

`test_eight_devices_match_one_device` runs this file as a script under 8 fake
CPU devices: `python tests/test_executor.py ROOT OUT.npz` checks every scenario
there and writes its outputs to OUT.npz.
"""

import glob
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudit import compile_count
from jaxaudit import executor as executor_lib
from jaxaudit import resume
from jaxaudit import sharding

SCALE = 2.0
# (examples, batch size, shard size): shards smaller than, equal to, larger
# than and not dividing the examples; batches that do not divide a shard or
# the device count; resume off (0); one example; none.
CASES = [(13, 4, 0), (13, 4, 5), (13, 4, 13), (13, 4, 20), (13, 3, 4),
         (13, 16, 6), (1, 4, 0), (0, 4, 5)]


def _global_ids(n):
  """Sorted, non-contiguous global ids, so ids and positions never agree."""
  return 100 + 3 * np.arange(n)


def _inputs(ids):
  """x [n, 3] = id * (1, 2, 3): a row's output says which example it is."""
  ids = np.asarray(ids, np.int32)
  x = ids[:, None].astype(np.float32) * np.float32([1, 2, 3])
  return {"id": ids, "x": x}


def _step(scale, batch):
  """Per row: its id, 6 * id * scale, its mask, and its batch's real rows."""
  mask = batch["mask"]
  return {"id": batch["id"], "y": batch["x"].sum(-1) * scale, "mask": mask,
          "batch_rows": jnp.full(mask.shape, mask.sum(), jnp.int32)}


def _other_step(scale, batch):
  """A different computation: y = -id; a reused shard never shows it."""
  del scale
  return {"id": batch["id"], "y": -batch["x"][:, 0],
          "mask": batch["mask"],
          "batch_rows": jnp.zeros(batch["mask"].shape, jnp.int32)}


def _expected_batch_rows(n, batch_size, shard_size, mesh):
  """Real (unmasked) rows in each example's batch: shards are cut first, then
  each shard into batches of the rounded batch size, the last one padded."""
  batch = sharding.round_batch_size(batch_size, mesh)
  size = shard_size or max(n, 1)
  rows = []
  for lo in range(0, n, size):
    length = min(size, n - lo)
    rows += [min(batch, length - j // batch * batch) for j in range(length)]
  return np.asarray(rows, np.int32)


def _run_and_check(root, case, mesh):
  """Runs `_step` over a case's examples; asserts each is computed once, in
  order, with its own output, and padding masked out of every batch."""
  n, batch_size, shard_size = case
  ids = _global_ids(n)
  executor = executor_lib.Executor(mesh, ids, root, shard_size)
  out = executor.run("square", _step, jnp.float32(SCALE), _inputs(ids),
                     batch_size=batch_size)
  np.testing.assert_array_equal(out["id"], ids)
  np.testing.assert_array_equal(out["y"], 6 * SCALE * ids)
  assert out["mask"].all() and len(out["mask"]) == n
  np.testing.assert_array_equal(
      out["batch_rows"], _expected_batch_rows(n, batch_size, shard_size, mesh))
  shards = glob.glob(os.path.join(root, "square", "shard-*"))
  assert len(shards) == max(1, -(-n // (shard_size or max(n, 1))))
  return out


def _run_subset(root, mesh):
  """`ids=`: a subset of the process's examples (e.g. those still robust)."""
  ids = _global_ids(13)
  subset = ids[[0, 2, 3, 7, 12]]
  executor = executor_lib.Executor(mesh, ids, root, shard_size=2)
  out = executor.run("subset", _step, jnp.float32(SCALE), _inputs(subset),
                     batch_size=4, ids=subset)
  np.testing.assert_array_equal(out["id"], subset)
  np.testing.assert_array_equal(out["y"], 6 * SCALE * subset)
  np.testing.assert_array_equal(out["batch_rows"],
                                _expected_batch_rows(5, 4, 2, mesh))
  # Shards are cut over the subset (3 of 2 rows), not over all 13 examples.
  assert len(glob.glob(os.path.join(root, "subset", "shard-*"))) == 3
  return out


def _scenarios(root):
  """Every case and the subset, checked; their outputs that do not depend on
  the device count (batch_rows does: batches round up to it)."""
  mesh = sharding.make_mesh()
  runs = {f"{n}-{b}-{s}": _run_and_check(os.path.join(root, f"{n}-{b}-{s}"),
                                         (n, b, s), mesh)
          for n, b, s in CASES}
  runs["subset"] = _run_subset(os.path.join(root, "subset"), mesh)
  return {f"{name}/{key}": out[key] for name, out in runs.items()
          for key in ("id", "y", "mask")}


@pytest.mark.parametrize("case", CASES,
                         ids=lambda c: "n{}-batch{}-shard{}".format(*c))
def test_every_example_once_with_padding_masked(tmp_path, case):
  _run_and_check(str(tmp_path), case, sharding.make_mesh())


def test_a_subset_of_ids_is_computed_once(tmp_path):
  _run_subset(str(tmp_path), sharding.make_mesh())


def test_keep_on_disk_reads_back_equal(tmp_path):
  mesh = sharding.make_mesh()
  ids = _global_ids(13)
  in_memory = executor_lib.Executor(mesh, ids, str(tmp_path / "a"), 5).run(
      "square", _step, jnp.float32(SCALE), _inputs(ids), batch_size=4)
  on_disk = executor_lib.Executor(mesh, ids, str(tmp_path / "b"), 5).run(
      "square", _step, jnp.float32(SCALE), _inputs(ids), batch_size=4,
      keep_on_disk=("y",))
  handle = on_disk["y"]
  assert isinstance(handle, resume.ShardedArray)
  assert handle.shape == (13,) and handle.dtype == np.float32
  assert len(handle.parts) == 3  # One memory-mapped file per shard.
  np.testing.assert_array_equal(handle.read(), in_memory["y"])
  np.testing.assert_array_equal(handle[3:12], in_memory["y"][3:12])
  np.testing.assert_array_equal(on_disk["id"], in_memory["id"])


def _shard_mtimes(root):
  return {p: os.stat(p).st_mtime_ns
          for p in glob.glob(os.path.join(root, "square", "shard-*", "*.npy"))}


def _count_map_batches(monkeypatch):
  """Counts the shards computed (each is one `map_batches` call)."""
  calls = []
  map_batches = sharding.map_batches

  def counted(*args, **kwargs):
    calls.append(kwargs.get("desc"))
    return map_batches(*args, **kwargs)

  monkeypatch.setattr(sharding, "map_batches", counted)
  return calls


def test_second_executor_reuses_every_committed_shard(tmp_path, monkeypatch):
  mesh, ids, root = sharding.make_mesh(), _global_ids(13), str(tmp_path)
  first = executor_lib.Executor(mesh, ids, root, 5).run(
      "square", _step, jnp.float32(SCALE), _inputs(ids), batch_size=4)
  mtimes = _shard_mtimes(root)
  calls = _count_map_batches(monkeypatch)
  again = executor_lib.Executor(mesh, ids, root, 5).run(
      "square", _other_step, jnp.float32(SCALE), _inputs(ids), batch_size=4)
  assert not calls
  assert _shard_mtimes(root) == mtimes
  for key in first:
    np.testing.assert_array_equal(again[key], first[key])


class _Killed(Exception):
  pass


def test_interrupted_run_recomputes_only_uncommitted_shards(tmp_path,
                                                            monkeypatch):
  mesh, ids, root = sharding.make_mesh(), _global_ids(13), str(tmp_path)
  save = resume.ShardStore.save

  def save_twice(self, shard, shard_ids, arrays):
    if shard >= 2:
      raise _Killed()
    return save(self, shard, shard_ids, arrays)

  monkeypatch.setattr(resume.ShardStore, "save", save_twice)
  with pytest.raises(_Killed):
    executor_lib.Executor(mesh, ids, root, 5).run(
        "square", _step, jnp.float32(SCALE), _inputs(ids), batch_size=4)
  monkeypatch.undo()
  # What a kill mid-write leaves: files of a shard never committed.
  os.makedirs(os.path.join(root, "square", "shard-00002-p00000"))
  with open(os.path.join(root, "square", "shard-00002-p00000", "y.npy"),
            "wb") as f:
    f.write(b"half")
  calls = _count_map_batches(monkeypatch)
  out = executor_lib.Executor(mesh, ids, root, 5).run(
      "square", _other_step, jnp.float32(SCALE), _inputs(ids), batch_size=4)
  assert len(calls) == 1
  np.testing.assert_array_equal(out["id"], ids)
  np.testing.assert_array_equal(out["y"][:10], 6 * SCALE * ids[:10])
  np.testing.assert_array_equal(out["y"][10:], -ids[10:])


@pytest.mark.parametrize("shard_size,changed_ids", [(0, False), (5, True)],
                         ids=["resume-off", "other-ids"])
def test_shards_are_recomputed_when_not_reusable(tmp_path, shard_size,
                                                 changed_ids):
  mesh, ids, root = sharding.make_mesh(), _global_ids(13), str(tmp_path)
  executor_lib.Executor(mesh, ids, root, shard_size).run(
      "square", _step, jnp.float32(SCALE), _inputs(ids), batch_size=4)
  ids = ids + 1 if changed_ids else ids
  out = executor_lib.Executor(mesh, ids, root, shard_size).run(
      "square", _other_step, jnp.float32(SCALE), _inputs(ids), batch_size=4)
  np.testing.assert_array_equal(out["y"], -ids)


def test_gather_reduce_and_rows_of_on_one_process(tmp_path):
  mesh, ids = sharding.make_mesh(), _global_ids(13)
  executor = executor_lib.Executor(mesh, ids, str(tmp_path), 5)
  out = executor.run("square", _step, jnp.float32(SCALE), _inputs(ids),
                     batch_size=4, keep_on_disk=("y",))
  gathered = executor.gather({"y": out["y"].read()})
  np.testing.assert_array_equal(gathered["id"], ids)
  np.testing.assert_array_equal(gathered["y"], 6 * SCALE * ids)
  for op in ("sum", "min", "max"):
    assert executor.reduce(3.5, op) == 3.5
  wanted = ids[[12, 0, 5, 6]]  # Out of order, across shards.
  for array in (out["y"], out["y"].read()):
    np.testing.assert_array_equal(executor.rows_of(array, wanted),
                                  6 * SCALE * wanted)


def test_a_step_compiles_once_and_its_state_is_placed_once(tmp_path,
                                                          monkeypatch):
  """Mapping one step again (another computation, other values of a traced
  argument) compiles nothing new, and an array of its state is put on the
  mesh once however often the stage maps it."""
  mesh, ids = sharding.make_mesh(), _global_ids(13)
  executor = executor_lib.Executor(mesh, ids, str(tmp_path), 0)
  placed = []
  put = sharding.put_global
  monkeypatch.setattr(sharding, "put_global",
                      lambda tree, target: placed.append(tree) or put(tree,
                                                                      target))
  params = jnp.float32(SCALE)
  step = lambda state, batch: _step(state, batch)  # Compiled by no other test.
  with compile_count.counting() as first:
    a = executor.run("a", step, params, _inputs(ids), batch_size=4)
  with compile_count.counting() as again:
    b = executor.run("b", step, params, _inputs(ids), batch_size=4)
    c = executor.run("c", step, jnp.float32(3.0), _inputs(ids), batch_size=4)
  assert first.count >= 1 and again.count == 0
  np.testing.assert_array_equal(a["y"], b["y"])
  np.testing.assert_array_equal(c["y"], 6 * 3.0 * ids)
  assert sum(leaf is params for leaf in placed) == 1
  with compile_count.counting() as other:
    executor.run("d", lambda state, batch: _other_step(state, batch), params,
                 _inputs(ids), batch_size=4)
  assert other.count >= 1  # A different function compiles.


def test_bad_names_are_refused(tmp_path):
  mesh, ids = sharding.make_mesh(), _global_ids(3)
  executor = executor_lib.Executor(mesh, ids, str(tmp_path), 5)
  with pytest.raises(ValueError, match="computation name"):
    executor.run("../up", _step, jnp.float32(SCALE), _inputs(ids),
                 batch_size=4)
  with pytest.raises(ValueError, match="output name"):
    executor.run("ok", lambda s, b: {"a/b": b["x"]}, jnp.float32(SCALE),
                 _inputs(ids), batch_size=4)


def test_eight_devices_match_one_device(tmp_path):
  out = tmp_path / "eight.npz"
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  result = subprocess.run([sys.executable, __file__, str(tmp_path / "eight"),
                           str(out)], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  eight = np.load(out)
  one = _scenarios(str(tmp_path / "one"))
  assert set(eight.files) == set(one)
  for key, value in one.items():
    np.testing.assert_array_equal(eight[key], value, err_msg=key)


if __name__ == "__main__":
  assert jax.device_count() == 8, jax.devices()
  np.savez(sys.argv[2], **_scenarios(sys.argv[1]))
