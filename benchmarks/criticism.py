"""MMD-critic: jaxaudit (blocked, greedy from running sums) vs dense NumPy.

  python benchmarks/criticism.py                      # quick: 5,000 x 1280
  python benchmarks/criticism.py --n=20000            # the README row
  python benchmarks/criticism.py --n=200000 --noreference   # memory check

Both select the prototypes and criticisms of one group of clustered random
features with Lite0's feature width; the benchmark checks that the selections are
identical, then prints both times, their ratio and each side's peak memory (the
reference builds the dense float64 n x n kernel: 3.2 GB at n = 20,000).
"""

from __future__ import annotations

import os
import resource
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import mmd_critic_reference as ref  # noqa: E402
from jaxaudit import criticism  # noqa: E402
import numpy as np  # noqa: E402

_N = flags.DEFINE_integer("n", 5000, "points")
_DIM = flags.DEFINE_integer("dim", 1280, "feature width (Lite0: 1280)")
_PROTOTYPES = flags.DEFINE_integer("prototypes", 32, "prototypes")
_CRITICISMS = flags.DEFINE_integer("criticisms", 32, "criticisms")
_REFERENCE = flags.DEFINE_bool("reference", True, "run the NumPy reference")


def _peak_rss_gb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main(argv):
  del argv
  x = ref.clustered_features(_N.value, _DIM.value, 20, _N.value // 200, 0)
  gamma = float(np.float32(criticism.median_gamma(x)))
  m, c = _PROTOTYPES.value, _CRITICISMS.value
  criticism.select_groups(x[:1024], np.zeros(1024, int), m, c, gamma)  # warm-up
  start = time.perf_counter()
  selection = criticism.select_groups(x, np.zeros(len(x), int), m, c, gamma)
  jax_time = time.perf_counter() - start
  jax_rss = _peak_rss_gb()
  print(f"n={_N.value} d={_DIM.value} m={m} c={c}: jaxaudit {jax_time:.1f} s, "
        f"peak RSS {jax_rss:.2f} GB (features {x.nbytes / 2**30:.2f} GB)")
  if not _REFERENCE.value:
    return
  start = time.perf_counter()
  kernel = ref.kernel_matrix(x, gamma)
  kernel_time = time.perf_counter() - start
  protos, p_margins = ref.prototypes(kernel, m)
  crits, c_margins = ref.criticisms(kernel, protos, c)
  ref_time = time.perf_counter() - start
  same = (np.array_equal(protos, selection.prototypes[0])
          and np.array_equal(crits, selection.criticisms[0]))
  print(f"reference {ref_time:.1f} s (dense kernel {kernel_time:.1f} s), peak "
        f"RSS {_peak_rss_gb():.2f} GB; smallest margins {p_margins.min():.2e} /"
        f" {c_margins.min():.2e}")
  print(f"identical selections: {same}; speed-up {ref_time / jax_time:.1f}x")
  if not same:
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
