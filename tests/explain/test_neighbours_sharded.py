"""Nearest neighbours with the references sharded over 8 devices equal the
search over all references on one device, on the digits model's features."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np

from conftest import ROOT
from digits_model import digits
from jaxaudit.explain import neighbours

_SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, "tests")
from digits_model import digits
from jaxaudit import sharding
from jaxaudit.explain import neighbours

model, params, images, labels, _ = digits(203)
features = np.asarray(model.logits_and_features(params, images)[1])
classes = np.array(labels, np.int32)
classes[::7] = -1  # Unlabelled queries find no neighbour of their "class".
ids = np.arange(3, 206, dtype=np.int32)  # Global ids, not row numbers.
mesh = sharding.make_mesh()
out = {}
for k in (5, 40):  # 40 > the 26 references each of the 8 devices holds.
  reference = (sharding.shard_rows(features, mesh),
               sharding.shard_rows(np.maximum(classes, 0), mesh, fill=-2),
               sharding.shard_rows(ids, mesh, fill=-1))
  queries = [sharding.shard_rows(x, mesh, fill=f) for x, f in
             ((features, 0), (classes, -1), (ids, -1))]
  found, similarity = jax.jit(
      lambda *a: neighbours.nearest_in_class_sharded(
          *a, k, mesh, sharding.DATA_AXIS))(*queries, *reference)
  out[k] = [np.asarray(found)[:203].tolist(),
            np.asarray(similarity)[:203].tolist()]
print(json.dumps({"devices": mesh.size, "out": out}))
"""


def _sharded(devices: int) -> dict:
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  result = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def test_sharded_references_give_the_one_device_neighbours():
  eight = _sharded(8)
  assert eight["devices"] == 8
  model, params, images, labels, _ = digits(203)
  features = model.logits_and_features(params, images)[1]
  classes = np.array(labels, np.int32)
  classes[::7] = -1
  ids = np.arange(3, 206, dtype=np.int32)
  for k in (5, 40):
    want = neighbours.nearest_in_class(
        features, jnp.asarray(classes), jnp.asarray(ids), features,
        jnp.asarray(np.maximum(classes, 0)), jnp.asarray(ids), k)
    want_ids = np.where(np.asarray(want.index) >= 0,
                        ids[np.maximum(np.asarray(want.index), 0)], -1)
    found, similarity = (np.asarray(x) for x in eight["out"][str(k)])
    np.testing.assert_array_equal(found, want_ids)
    np.testing.assert_allclose(similarity, np.asarray(want.similarity),
                               rtol=1e-5, atol=1e-6)
    assert (found[::7] == -1).all()  # Unlabelled queries: no class, no match.
    assert (found[1::7, :3] >= 0).all()  # Labelled ones: same-class digits.
    assert not (found == ids[:, None]).any()  # Never itself.
