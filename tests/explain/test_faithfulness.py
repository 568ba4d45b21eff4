"""Deletion / insertion curves and their areas."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit.explain import faithfulness


def test_pixel_ranks_order_by_score():
  scores = jnp.array([[[0.1, 0.9], [0.5, 0.3]]])
  np.testing.assert_array_equal(faithfulness.pixel_ranks(scores),
                                [[[3, 0], [1, 2]]])


def test_area_under_curve_is_the_trapezoid_rule():
  curve = jnp.array([[1.0, 0.5, 0.0], [1.0, 1.0, 1.0]])
  np.testing.assert_allclose(faithfulness.area_under_curve(curve), [0.5, 1.0])


def test_curves_follow_the_evidence_pixel():
  # Class 0's logit is the value of pixel (0, 0): deleting it first kills the
  # probability at once, inserting it first restores it at once.
  logits_fn = lambda x: jnp.stack([10 * x[:, 0, 0, 0], jnp.zeros(len(x))], -1)
  images = jnp.zeros((1, 4, 4, 3)).at[:, 0, 0, :].set(1.0)
  good = jnp.zeros((1, 4, 4)).at[:, 0, 0].set(1.0)
  bad = 1.0 - good
  zeros = jnp.zeros_like(images)
  targets = jnp.zeros(1, jnp.int32)
  curves = {name: faithfulness.deletion_insertion(
      logits_fn, images, faithfulness.pixel_ranks(s), targets, zeros, zeros, 16)
            for name, s in (("good", good), ("bad", bad))}
  auc = lambda c: float(faithfulness.area_under_curve(c)[0])
  assert auc(curves["good"].deletion) < auc(curves["bad"].deletion)
  assert auc(curves["good"].insertion) > auc(curves["bad"].insertion)
  np.testing.assert_allclose(curves["good"].deletion[0, 1:], 0.5, atol=1e-4)
  np.testing.assert_allclose(curves["good"].insertion[0, 1:],
                             jax.nn.sigmoid(10.0), atol=1e-4)
