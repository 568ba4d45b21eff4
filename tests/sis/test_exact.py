"""Exact backward selection on real digits (2 x 2-pixel features: 64 per image)
against a plain NumPy loop of the procedure, and against BGSIS."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from digits_model import digits
from jaxaudit.sis import bgsis
from jaxaudit.sis import exact
from jaxaudit.sis import masks
from jaxaudit.sis import subsets

N = 16
BLOCK = 2
F = (16 // BLOCK) ** 2


@pytest.fixture(scope="module")
def selected():
  """(model, params, images [N, 16, 16, 3], targets [N], baseline [3],
  exact selection) on the first N test digits."""
  model, params, images, _, _ = digits(N)
  baseline = jnp.asarray(masks.baseline_pixel(model, "mean"))
  targets = jnp.argmax(model.logits(params, images), -1)
  log_prob = lambda x: jax.nn.log_softmax(model.logits(params, x), -1)
  fn = jax.jit(lambda x, t: exact.backward_selection(
      log_prob, x, t, baseline, block_size=BLOCK, chunk=24))
  sel = jax.tree.map(np.asarray, fn(images, targets))
  return model, params, images, np.asarray(targets), baseline, sel


def reference_backselect(log_prob, image, target, baseline):
  """The procedure as written: each step scores every remaining feature's
  removal with its own forward pass (padded to F rows) and removes the best."""
  mask = np.ones(F, np.float32)
  order, values = [], []
  for _ in range(F):
    remaining = np.flatnonzero(mask)
    trial = np.tile(mask, (F, 1))
    trial[np.arange(len(remaining)), remaining] = 0.0
    x = masks.apply_mask(jnp.broadcast_to(image, (F,) + image.shape),
                         jnp.asarray(trial), baseline, BLOCK)
    scores = np.asarray(log_prob(x))[:len(remaining), target]
    best = int(np.argmax(scores))
    order.append(remaining[best])
    values.append(scores)
    mask[remaining[best]] = 0.0
  return np.asarray(order), values


def test_each_step_removes_the_feature_the_reference_scores_best(selected):
  model, params, images, targets, baseline, sel = selected
  log_prob = jax.jit(lambda x: jax.nn.log_softmax(model.logits(params, x), -1))
  for i in range(3):
    order, values = reference_backselect(log_prob, images[i], targets[i],
                                         baseline)
    removed = np.argsort(-sel.ranks[i])  # Removal order: highest rank first.
    # Same removal order, up to candidates whose scores tie within float
    # noise: at each step the chosen feature scores the reference's best.
    mask = np.ones(F, bool)
    for t in range(F):
      remaining = np.flatnonzero(mask)
      chosen = values[t][np.searchsorted(remaining, removed[t])]
      assert chosen >= values[t].max() - 1e-5, (i, t)
      mask[removed[t]] = False
    assert np.mean(order == removed) > 0.9
    # The curve is the confidence along that order.
    np.testing.assert_allclose(
        np.log(sel.curve[i, 1:]),
        [v.max() for v in values[:-1]], atol=1e-4)


def test_ranking_is_a_permutation_and_curve_starts_at_the_full_image(selected):
  model, params, images, targets, _, sel = selected
  np.testing.assert_array_equal(np.sort(sel.ranks, 1),
                                np.tile(np.arange(F), (N, 1)))
  np.testing.assert_array_equal(sel.kept, np.arange(F, 0, -1))
  probs = np.asarray(jax.nn.softmax(model.logits(params, images)))
  np.testing.assert_allclose(sel.curve[:, 0], probs[np.arange(N), targets],
                             atol=1e-5)


def test_exact_keeps_more_confidence_than_bgsis_on_small_subsets(selected):
  model, params, images, targets, baseline, sel = selected
  log_prob = lambda x: jax.nn.log_softmax(model.logits(params, x), -1)
  approx = jax.jit(lambda x, t: bgsis.backward_selection(
      log_prob, x, t, baseline, block_size=BLOCK,
      removals=(1,) * F))(images, jnp.asarray(targets))
  # Along the whole curve exact selection keeps at least BGSIS's mean
  # confidence (greedy on the true value against on its gradient), and
  # clearly more where few features remain.
  exact_mean = sel.curve.mean(0)
  approx_mean = np.asarray(approx.curve).mean(0)
  assert np.all(exact_mean >= approx_mean - 0.02)
  few = slice(F - F // 4, F)  # The last quarter: <= 16 of 64 features.
  assert exact_mean[few].mean() > approx_mean[few].mean() + 0.05


def test_compare_exact_reports_both_on_the_same_grid(selected):
  model, params, images, targets, baseline, sel = selected
  counts = subsets.subset_counts((0.05, 0.1), F)
  settings = subsets.ExactSettings(
      block_size=BLOCK, num_features=F, chunk=24, removals=tuple(
          bgsis.removal_schedule(F, 0.1, 0.02).tolist()),
      threshold=0.9, counts=counts)
  out = jax.tree.map(np.asarray, jax.jit(lambda x: subsets.compare_exact(
      model.logits_fn(params), x, baseline, settings))(images))
  np.testing.assert_array_equal(out["exact_ranks"], sel.ranks)
  np.testing.assert_array_equal(out["target"], targets)
  assert out["top_overlap"].shape == (N, 2)
  assert np.all((0 <= out["top_overlap"]) & (out["top_overlap"] <= 1))
  assert np.all((-1 <= out["spearman"]) & (out["spearman"] <= 1))
  # Identical rankings overlap fully; the two differ but agree on most.
  assert 0.0 < out["spearman"].mean() < 1.0
  found = out["sis_found"]
  assert np.all(out["exact_sis_size"][~found] == F)
  assert np.all(out["sis_jaccard"] <= 1)

