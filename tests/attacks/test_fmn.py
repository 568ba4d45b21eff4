"""FMN (L-inf and L2) on the shipped test model and real test digits: small
adversarials for most digits from one run, consistent with its own curve, at
least as small as DeepFool's (L2) and PGD's (L-inf)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attack_fixtures import L2, LINF, NUM_DIGITS, check_in_ball, digits
from jaxaudit.attacks import deepfool, fmn, pgd
from jaxaudit.errors import ParameterError

N = NUM_DIGITS
# FMN-L2's default step (1.0) stalls on the digits' saturated pixels.
L2_SETTINGS = {"steps": 50, "alpha_init": 0.1}


@functools.cache
def _run(attack, norm: str, reverse: bool = False, **hyperparameters):
  """`attack` jitted on the first N fixture images -> (AttackResult of
  arrays, labels, clean-correct mask)."""
  model, params, images, labels, keys = digits()
  images, labels, keys = images[:N], labels[:N], keys[:N]
  if reverse:
    images, labels, keys = images[::-1], labels[::-1], keys[::-1]
  epsilons = LINF if norm == "linf" else L2
  fn = jax.jit(functools.partial(attack, model.logits_fn(params), norm=norm,
                                 **hyperparameters))
  result = fn(images, labels, jnp.asarray(epsilons, jnp.float32), keys)
  correct = (np.asarray(model.logits(params, images)).argmax(-1)
             == np.asarray(labels))
  return jax.tree.map(np.asarray, result), np.asarray(labels), correct


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fmn_curve_from_one_run(norm):
  settings = {"steps": 30} if norm == "linf" else L2_SETTINGS
  result, labels, correct = _run(fmn.fmn, norm, **settings)
  _, _, images, _, _ = digits()
  epsilons = LINF if norm == "linf" else L2
  check_in_ball(result, images[:N], epsilons, norm)
  np.testing.assert_array_equal(result.success,
                                result.adv_class != labels[None])
  # Before its first adversarial FMN sizes its ball by the linear estimate of
  # the distance to the boundary; on a quarter of the digits (half their
  # pixels black) L2 clipping to [0, 1] keeps it below the boundary.
  found = np.isfinite(result.min_norm[correct])
  assert found.mean() >= (1.0 if norm == "linf" else 0.7), result.min_norm
  assert (result.min_norm[~correct] == 0).all()
  # The curve read off the minimal norms is what scoring at each eps finds.
  covered = result.min_norm[None] <= np.asarray(epsilons)[:, None]
  assert result.success[covered].all()
  assert (np.diff(result.success.mean(axis=1)) >= 0).all()


def test_fmn_l2_is_as_small_as_deepfool():
  ours = _run(fmn.fmn, "l2", **L2_SETTINGS)[0].min_norm
  result, _, correct = _run(deepfool.deepfool, "l2", steps=50)
  both = correct & np.isfinite(ours) & np.isfinite(result.min_norm)
  assert np.median(ours[both]) <= 1.05 * np.median(result.min_norm[both]), (
      np.median(ours[both]), np.median(result.min_norm[both]))


def test_fmn_linf_is_at_least_pgd():
  """Wherever 10-step PGD fools an image at eps, FMN's minimal norm is at
  most a little above eps (it searches the norm, PGD fixes it)."""
  ours, _, correct = _run(fmn.fmn, "linf", steps=30)
  reference = _run(pgd.pgd, "linf", steps=10)[0]
  fooled = reference.success & correct[None]
  below = ours.min_norm[None] <= 1.25 * np.asarray(LINF)[:, None]
  assert below[fooled].mean() >= 0.9, below[fooled].mean()


def test_fmn_does_not_depend_on_the_batch():
  forward = _run(fmn.fmn, "l2", steps=10)[0]
  backward = _run(fmn.fmn, "l2", reverse=True, steps=10)[0]
  np.testing.assert_allclose(backward.min_norm[::-1], forward.min_norm,
                             rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name,value", [
    ("norm", "l1"), ("steps", 0), ("gamma", 0.0), ("gamma", 1.0),
    ("alpha_init", 0.0), ("alpha_final", 2.0), ("init_epsilon", -1.0)])
def test_bad_parameters(name, value):
  with pytest.raises(ParameterError) as error:
    fmn.fmn(lambda x: jnp.zeros((x.shape[0], 3)), jnp.zeros((1, 4, 4, 3)),
            jnp.zeros(1, int), jnp.ones(1),
            jax.random.split(jax.random.key(0), 1), **{name: value})
  assert error.value.parameter == name
