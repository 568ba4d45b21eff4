"""BGSIS on real CIFAR-10 images with the pretrained ResNet-20."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import CIFAR_DIR, require_shared
from jaxaudit.models.loading import load_model
from jaxaudit.sis import bgsis
from jaxaudit.sis import masks
from jaxaudit.sis import subsets

N = 32
REMOVALS = tuple(bgsis.removal_schedule(1024, 0.0, 0.05).tolist())  # 51 each.
SETTINGS = subsets.SisSettings(block_size=1, removals=REMOVALS, threshold=0.99,
                               counts=subsets.subset_counts((0.05, 0.1), 1024),
                               num_random=3)


@pytest.fixture(scope="module")
def cifar():
  npz = require_shared(os.path.join(CIFAR_DIR, "test_jpeg.npz"))
  model, params = load_model(ml_collections.ConfigDict(dict(
      name="cifar_resnet20", checkpoint=os.path.join(CIFAR_DIR, "resnet20.th"))))
  with np.load(npz) as data:
    images = data["images"][:N].astype(np.float32) / 255.0
    labels = data["labels"][:N]
  baseline = jnp.asarray(masks.baseline_pixel(model, "mean"))
  band = jnp.asarray(masks.border_band(32, 1, 0.1))
  fn = jax.jit(lambda p, x, i: subsets.analyse(
      model.logits_fn(p), x, i, jax.random.key(0), baseline, band, SETTINGS))
  out = jax.tree.map(np.asarray, fn(params, jnp.asarray(images), jnp.arange(N)))
  return model, params, images, labels, baseline, out


def test_ranking_is_a_permutation(cifar):
  ranks = cifar[-1]["ranks"]
  assert ranks.shape == (N, 1024)
  np.testing.assert_array_equal(np.sort(ranks, axis=1),
                                np.broadcast_to(np.arange(1024), ranks.shape))


def test_top_5_percent_keeps_most_accuracy_random_does_not(cifar):
  _, _, _, labels, _, out = cifar
  full = (out["target"] == labels).mean()
  top5 = (out["subset_prediction"][:, 0] == labels).mean()
  random5 = (out["random_prediction"][:, :, 0] == labels[:, None]).mean()
  assert full > 0.7
  assert top5 >= 0.6 * full, (top5, full)
  assert random5 < 0.3, random5
  assert top5 > random5 + 0.3


def test_sis_mask_meets_the_threshold(cifar):
  model, params, images, _, baseline, out = cifar
  found = out["sis_found"]
  assert found.mean() > 0.8
  keep = masks.top_ranked(jnp.asarray(out["ranks"]), jnp.asarray(out["sis_size"]))
  masked = masks.apply_mask(jnp.asarray(images), keep, baseline, 1)
  probs = np.asarray(jax.nn.softmax(model.logits(params, masked)))
  p_target = probs[np.arange(N), out["target"]]
  assert np.all(p_target[found] >= SETTINGS.threshold - 1e-4), p_target[found]
  # The SIS is much smaller than the image: the paper's overinterpretation.
  assert np.median(out["sis_size"][found]) < 0.5 * 1024
  # Sizes lie on the curve's grid.
  assert set(out["sis_size"]) <= set(bgsis.kept_counts(np.asarray(REMOVALS)))


def test_curve_starts_at_the_full_image_confidence(cifar):
  model, params, images, _, _, out = cifar
  probs = np.asarray(jax.nn.softmax(model.logits(params, jnp.asarray(images))))
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
  curve = jnp.asarray([[0.5, 0.995, 0.98, 0.992, 0.2],
                       [0.3, 0.4, 0.5, 0.6, 0.7]])
  kept = jnp.asarray([100, 80, 60, 40, 20])
  size, found = bgsis.sis_size(curve, kept, 0.99)
  np.testing.assert_array_equal(size, [40, 100])
  np.testing.assert_array_equal(found, [True, False])


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
