"""Blocked, sharded kernel row sums and the median heuristic vs float64 NumPy."""

import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from criticism_data import digit_features  # noqa: F401 (fixture)
from benchmarks import mmd_critic_reference as ref
from jaxaudit.criticism import kernel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_row_sums_match_dense_float64_over_many_tiles():
  x = ref.clustered_features(300, 24, 4, 6, seed=1)
  gamma = kernel.median_gamma(x)
  dense = ref.kernel_matrix(x, gamma).sum(1)
  padded = np.zeros((2, 320, 24), np.float32)
  padded[0, :300] = x - x.mean(0)
  padded[1, :100] = x[:100] - x[:100].mean(0)
  mask = np.zeros((2, 320), bool)
  mask[0, :300] = mask[1, :100] = True
  sums = np.asarray(kernel.kernel_row_sums(
      jnp.asarray(padded), jnp.asarray(mask),
      jnp.asarray([gamma, gamma], jnp.float32), block_size=64))
  np.testing.assert_allclose(sums[0, :300], dense, rtol=2e-6)
  np.testing.assert_allclose(sums[1, :100],
                             ref.kernel_matrix(x[:100], gamma).sum(1), rtol=2e-6)
  assert not sums[:, 300:].any() and not sums[1, 100:].any()


def test_median_gamma_is_inverse_median_of_distinct_pairs(digit_features):
  x = digit_features[0][:120].astype(np.float64)
  d2 = ((x[:, None] - x[None]) ** 2).sum(-1)[np.triu_indices(120, 1)]
  np.testing.assert_allclose(kernel.median_gamma(x), 1 / np.median(d2),
                             rtol=1e-9)
  sub = kernel.median_gamma(x, max_points=60)
  assert sub != kernel.median_gamma(x) and 0.5 < sub * np.median(d2) < 2
  assert kernel.median_gamma(np.ones((3, 4))) == 1.0


@pytest.mark.slow
def test_eight_devices_give_the_same_sums_and_selections():
  code = textwrap.dedent("""
      import jax, numpy as np
      from benchmarks import mmd_critic_reference as ref
      from jaxaudit import criticism
      assert jax.device_count() == 8
      x = ref.clustered_features(700, 16, 5, 8, seed=3)
      groups = np.arange(700) % 3
      s = criticism.select_groups(x, groups, 6, 6, block_size=64)
      print(np.concatenate(s.prototypes + s.criticisms
                           + [s.witness.view(np.int64)]).tobytes().hex())
  """)
  def run(devices):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count"
               f"={devices}", JAX_PLATFORMS="cpu",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code_n = code.replace("== 8", f"== {devices}")
    return subprocess.run([sys.executable, "-c", code_n], env=env, cwd=ROOT,
                          capture_output=True, check=True).stdout
  eight, one = run(8), run(1)
  assert len(eight) > 10000 and eight == one
