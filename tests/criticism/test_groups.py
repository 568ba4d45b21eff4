"""Many groups at once (padded, bucketed, vmapped) = each group on its own."""

import numpy as np

from benchmarks import mmd_critic_reference as ref
from jaxaudit import criticism


def test_groups_of_unequal_size_match_the_reference_one_by_one():
  x = ref.clustered_features(400, 16, 5, 9, seed=11)
  # Groups 0 and 1 share a padded size (vmapped together), 3 is empty, 4 has
  # fewer points than prototypes, 7 rows are in no group.
  groups = np.repeat([0, 1, 2, 4, -1], [200, 150, 40, 3, 7])
  groups = groups[np.random.default_rng(0).permutation(400)]
  selection = criticism.select_groups(x, groups, 6, 5)
  for g in range(5):
    rows = np.flatnonzero(groups == g)
    assert selection.sizes[g] == len(rows)
    if not len(rows):
      assert not len(selection.prototypes[g]) and np.isnan(selection.mmd2[g])
      continue
    gamma = criticism.median_gamma(x[rows])
    np.testing.assert_allclose(selection.gamma[g], gamma)
    kernel = ref.kernel_matrix(x[rows], np.float32(gamma))
    protos, _ = ref.prototypes(kernel, 6)
    crits, _ = ref.criticisms(kernel, protos, 5)
    np.testing.assert_array_equal(selection.prototypes[g], rows[protos])
    np.testing.assert_array_equal(selection.criticisms[g], rows[crits])
    np.testing.assert_allclose(selection.witness[rows],
                               ref.witness(kernel, protos), atol=1e-6)
    np.testing.assert_allclose(selection.mmd2[g], ref.mmd2(kernel, protos),
                               atol=1e-6)
  assert len(selection.prototypes[4]) == 3 and not len(selection.criticisms[4])
  assert np.isnan(selection.witness[groups == -1]).all()
