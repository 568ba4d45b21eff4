"""PGD (L-inf and L2) on the shipped test model and real test digits."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from attack_fixtures import (L2, LINF, attack, check_in_ball, clean_accuracy,
                             digits)
from jaxaudit.attacks import pgd


def _robust(result):
  labels = np.asarray(digits()[3])
  return (result.adv_class == labels[None]).mean(axis=1)


def test_pgd_linf_in_ball_monotone_and_at_least_fgsm():
  result = attack("pgd_linf", LINF, steps=10)
  check_in_ball(result, digits()[2], LINF, "linf")
  robust = _robust(result)
  assert (robust <= clean_accuracy()).all()
  assert (np.diff(robust) <= 0).all(), robust
  fgsm = _robust(attack("fgsm", LINF))
  assert (robust <= fgsm).all(), (robust, fgsm)
  assert robust[-1] < 0.1, robust


def test_pgd_l2_in_ball_and_flips_labels():
  result = attack("pgd_l2", L2, steps=10)
  check_in_ball(result, digits()[2], L2, "l2")
  robust = _robust(result)
  assert (np.diff(robust) <= 0).all(), robust
  assert robust[-1] < 0.5 * clean_accuracy(), robust
  finite = np.isfinite(result.min_norm)
  assert (result.min_norm[finite] <= max(L2) * (1 + 1e-5)).all()


def test_random_start_depends_only_on_example_keys():
  model, params, images, labels, keys = digits()
  run = jax.jit(functools.partial(pgd.pgd_linf, model.logits_fn(params),
                                  steps=2, restarts=2))
  eps = jnp.asarray([8 / 255])
  whole = run(images[:8], labels[:8], eps, keys[:8])
  order = np.arange(8)[::-1]
  flipped = run(images[order], labels[order], eps, keys[order])
  np.testing.assert_allclose(np.asarray(flipped.clipped[0]),
                             np.asarray(whole.clipped[0])[order], atol=1e-5)


def test_targeted_reaches_targets():
  model, params, images, labels, keys = digits()
  targets = (labels + 1) % 10  # Some lie beyond 32/255 for 1 in 4 digits.
  result = jax.jit(functools.partial(
      pgd.pgd_linf, model.logits_fn(params), steps=20, rel_stepsize=0.1,
      targets=targets))(images, labels, jnp.asarray([48 / 255]), keys)
  hit = np.asarray(result.adv_class[0]) == np.asarray(targets)
  np.testing.assert_array_equal(np.asarray(result.success[0]), hit)
  assert hit.mean() > 0.8, hit.mean()


def test_random_start_uniform_in_ball():
  keys = jax.random.split(jax.random.key(1), 64)
  for norm, eps in (("linf", 0.1), ("l2", 0.5)):
    delta = np.asarray(pgd.random_start(keys, (8, 8, 3), jnp.float32(eps),
                                        norm))
    size = (np.abs(delta).max(axis=(1, 2, 3)) if norm == "linf"
            else np.sqrt((delta ** 2).sum(axis=(1, 2, 3))))
    assert (size <= eps * (1 + 1e-6)).all() and size.mean() > 0.5 * eps
