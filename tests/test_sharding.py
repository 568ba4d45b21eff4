"""map_batches: every example computed exactly once, padding masked, any N."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit import sharding


def test_every_example_once_with_padding():
  mesh = sharding.make_mesh()
  x = np.arange(13, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)

  def fn(scale, batch):
    return {"y": batch["x"].sum(-1) * scale, "mask": batch["mask"]}

  out = sharding.map_batches(fn, jnp.float32(2.0), {"x": x}, mesh=mesh,
                             batch_size=4)
  np.testing.assert_allclose(out["y"], np.arange(13) * 6.0)
  assert out["mask"].all() and len(out["y"]) == 13


def test_empty_input_gives_empty_output():
  mesh = sharding.make_mesh()
  out = sharding.map_batches(lambda s, b: {"y": b["x"] + s}, jnp.float32(1),
                             {"x": np.zeros((0, 2), np.float32)}, mesh=mesh,
                             batch_size=4)
  assert out["y"].shape == (0, 2)


def test_batch_size_rounds_up_to_devices():
  mesh = sharding.make_mesh()
  assert sharding.round_batch_size(1, mesh) == mesh.size
  assert sharding.round_batch_size(mesh.size * 3 + 1, mesh) == mesh.size * 4


def test_example_keys_depend_only_on_ids():
  key = jax.random.key(0)
  a = jax.random.uniform(sharding.example_keys(key, jnp.array([5, 9]))[1])
  b = jax.random.uniform(sharding.example_keys(key, jnp.array([9]))[0])
  assert float(a) == float(b)


def test_gather_to_all_sorts_by_id():
  out = sharding.gather_to_all({"v": np.array([30, 10, 20])}, np.array([3, 1, 2]))
  assert list(out["v"]) == [10, 20, 30] and list(out["id"]) == [1, 2, 3]
