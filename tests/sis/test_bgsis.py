"""BGSIS on real digits with the shipped digits model (16 x 16 = 256 pixels)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from digits_model import digits
from jaxaudit.sis import bgsis
from jaxaudit.sis import masks
from jaxaudit.sis import subsets

N = 64
PIXELS = 16 * 16
REMOVALS = tuple(bgsis.removal_schedule(PIXELS, 0.0, 0.05).tolist())  # 13 each.
SETTINGS = subsets.SisSettings(
    block_size=1, removals=REMOVALS, threshold=0.99,
    counts=subsets.subset_counts((0.05, 0.1), PIXELS), num_random=3)


@pytest.fixture(scope="module")
def analysed():
  """(model, params, images [N, 16, 16, 3], labels [N], baseline [3], the
  `subsets.analyse` outputs) on the first N test digits."""
  model, params, images, labels, _ = digits(N)
  baseline = jnp.asarray(masks.baseline_pixel(model, "mean"))
  band = jnp.asarray(masks.border_band(16, 1, 0.1))
  fn = jax.jit(lambda p, x, i: subsets.analyse(
      model.logits_fn(p), x, i, jax.random.key(0), baseline, band, SETTINGS))
  out = jax.tree.map(np.asarray, fn(params, images, jnp.arange(N)))
  return model, params, images, np.asarray(labels), baseline, out


def test_ranking_is_a_permutation(analysed):
  ranks = analysed[-1]["ranks"]
  assert ranks.shape == (N, PIXELS)
  np.testing.assert_array_equal(np.sort(ranks, axis=1),
                                np.broadcast_to(np.arange(PIXELS), ranks.shape))


def test_top_ranked_pixels_keep_most_accuracy_random_ones_do_not(analysed):
  _, _, _, labels, _, out = analysed
  full = (out["target"] == labels).mean()
  assert full > 0.9
  # Top 5% (13 pixels) and 10% (26): ~81% and ~94% accuracy; random subsets
  # of the same sizes ~12-14%, near chance.
  for c, share in enumerate(("5%", "10%")):
    top = (out["subset_prediction"][:, c] == labels).mean()
    random = (out["random_prediction"][:, :, c] == labels[:, None]).mean()
    assert top >= 0.6 * full, (share, top, full)
    assert random < 0.3, (share, random)
    assert top > random + 0.3, (share, top, random)


def test_sis_mask_meets_the_threshold(analysed):
  model, params, images, _, baseline, out = analysed
  found = out["sis_found"]
  # An SIS exists exactly where the full image meets the threshold (78% of
  # these digits at 0.99).
  np.testing.assert_array_equal(found,
                                out["curve"][:, 0] >= SETTINGS.threshold)
  assert found.mean() > 0.7
  keep = masks.top_ranked(jnp.asarray(out["ranks"]), jnp.asarray(out["sis_size"]))
  masked = masks.apply_mask(images, keep, baseline, 1)
  probs = np.asarray(jax.nn.softmax(model.logits(params, masked)))
  p_target = probs[np.arange(N), out["target"]]
  assert np.all(p_target[found] >= SETTINGS.threshold - 1e-4), p_target[found]
  # The SIS is much smaller than the image: the paper's overinterpretation.
  assert np.median(out["sis_size"][found]) < 0.5 * PIXELS
  # Sizes lie on the curve's grid.
  assert set(out["sis_size"]) <= set(bgsis.kept_counts(np.asarray(REMOVALS)))


def test_curve_starts_at_the_full_image_confidence(analysed):
  model, params, images, _, _, out = analysed
  probs = np.asarray(jax.nn.softmax(model.logits(params, images)))
  np.testing.assert_allclose(out["curve"][:, 0],
                             probs[np.arange(N), out["target"]], atol=1e-5)
  assert out["curve"].shape == (N, len(REMOVALS))


def test_removal_schedule_refines_towards_small_subsets():
  removals = bgsis.removal_schedule(1024, 0.1, 0.005)
  assert removals.sum() == 1024 and removals[0] == 102 and removals.min() >= 4
  assert np.all(np.diff(removals) <= 0)
  np.testing.assert_array_equal(bgsis.kept_counts(np.asarray([3, 1])), [4, 1])
  np.testing.assert_array_equal(bgsis.removal_schedule(100, 0.0, 0.25), [25] * 4)


def test_sis_size_takes_the_smallest_set_meeting_the_threshold():
  # Row 0 dips below the threshold and comes back: the smallest set counts.
  # Rows 1 and 2 start (the full image) below it: no SIS, even where a subset
  # reaches the threshold (row 2), as in Carter et al.
  curve = jnp.asarray([[0.995, 0.995, 0.98, 0.992, 0.2],
                       [0.3, 0.4, 0.5, 0.6, 0.7],
                       [0.6, 0.995, 0.999, 0.3, 0.2]])
  kept = jnp.asarray([100, 80, 60, 40, 20])
  size, found = bgsis.sis_size(curve, kept, 0.99)
  np.testing.assert_array_equal(size, [40, 100, 100])
  np.testing.assert_array_equal(found, [True, False, False])


def test_last_step_ranks_the_remainder():
  # 4 features removed 3 per step: the last step has only 1 left.
  logits_fn = lambda x: jnp.stack([x.sum((1, 2, 3)), -x.sum((1, 2, 3))], -1)
  images = jnp.linspace(0.1, 1.0, 2 * 4 * 4 * 3).reshape(2, 4, 4, 3)
  sel = bgsis.backward_selection(lambda x: jax.nn.log_softmax(logits_fn(x)),
                                 images, jnp.zeros(2, jnp.int32),
                                 jnp.zeros(3), block_size=2, removals=(3, 1))
  np.testing.assert_array_equal(np.sort(sel.ranks, axis=1), [[0, 1, 2, 3]] * 2)
  # Target 0 grows with the pixel sum, so the brightest block ranks first.
  np.testing.assert_array_equal(sel.ranks, [[3, 2, 1, 0]] * 2)
