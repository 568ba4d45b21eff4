"""APGD-CE and APGD-T (L-inf and L2) on the shipped test model and real test
digits. (Robust accuracy against torchattacks:
tests/crosscheck/test_attack_references.py.)"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attack_fixtures import L2, LINF, NUM_DIGITS, check_in_ball, digits
from attack_fixtures import check_broadcast_is_bit_identical
from attack_fixtures import check_each_example_gets_its_own_radius
from jaxaudit import compile_options
from jaxaudit.attacks import apgd, pgd
from jaxaudit.errors import ParameterError

N = NUM_DIGITS
STEPS = 10


@functools.cache
def _jitted(attack, norm: str, **hyperparameters):
  """`attack` on the test model, jitted once for both batch orders."""
  model, params, _, _, _ = digits()
  return compile_options.jit(functools.partial(
      attack, model.logits_fn(params), norm=norm, **hyperparameters))


@functools.cache
def _run(attack, norm: str, epsilons: tuple[float, ...], reverse=False,
         **hyperparameters):
  """`attack` (jitted) on the first N digits -> (AttackResult of NumPy arrays,
  images, labels), examples in reverse order if asked."""
  _, _, images, labels, keys = digits()
  order = np.arange(N)[::-1] if reverse else np.arange(N)
  images, labels, keys = images[order], labels[order], keys[order]
  fn = _jitted(attack, norm, **hyperparameters)
  result = fn(images, labels, jnp.asarray(epsilons, jnp.float32), keys)
  return jax.tree.map(np.asarray, result), images, np.asarray(labels)


def _robust(result, labels):
  return (result.adv_class == labels[None]).mean(axis=1)


@pytest.mark.parametrize("norm,epsilons", [("linf", LINF), ("l2", L2)])
def test_apgd_ce_in_ball_flips_labels_and_beats_pgd(norm, epsilons):
  result, images, labels = _run(apgd.apgd_ce, norm, epsilons, steps=STEPS)
  check_in_ball(result, images, epsilons, norm)
  np.testing.assert_array_equal(result.success,
                                result.adv_class != labels[None])
  robust = _robust(result, labels)
  assert (np.diff(robust) <= 0).all() and robust[-1] == 0.0, robust
  baseline = _robust(_run(pgd.pgd, norm, epsilons, steps=STEPS)[0], labels)
  assert (robust <= baseline).all(), (robust, baseline)


@pytest.mark.parametrize("norm,epsilons", [("linf", LINF), ("l2", L2)])
def test_apgd_t_in_ball_and_flips_labels(norm, epsilons):
  result, images, labels = _run(apgd.apgd_t, norm, epsilons, steps=STEPS,
                                num_target_classes=3)
  check_in_ball(result, images, epsilons, norm)
  robust = _robust(result, labels)
  assert (np.diff(robust) <= 0).all() and robust[-1] == 0.0, robust
  single = _robust(_run(apgd.apgd_t, norm, epsilons, steps=STEPS,
                        num_target_classes=1)[0], labels)
  assert (robust <= single).all(), (robust, single)


def test_results_do_not_depend_on_batch_order():
  settings = dict(steps=4, num_target_classes=2, restarts=2)
  forward = _run(apgd.apgd_t, "l2", L2[:2], **settings)[0]
  backward = _run(apgd.apgd_t, "l2", L2[:2], reverse=True, **settings)[0]
  order = np.arange(N)[::-1]
  np.testing.assert_array_equal(backward.success, forward.success[:, order])
  np.testing.assert_allclose(backward.clipped, forward.clipped[:, order],
                             atol=1e-5)


def test_checkpoints_follow_the_authors():
  """The paper's w_j at 100 steps; elsewhere the authors' integer windows
  max(int(0.22 n), 1), shrinking by max(int(0.03 n), 1) to
  max(int(0.06 n), 1)."""
  assert list(np.flatnonzero(apgd.checkpoints(100))) == [22, 41, 57, 70, 80,
                                                         87, 93, 99]
  assert list(np.flatnonzero(apgd.checkpoints(50))) == [11, 21, 30, 38, 45]
  assert list(np.flatnonzero(apgd.checkpoints(10))) == list(range(2, 11))
  assert list(np.flatnonzero(apgd.checkpoints(1))) == [1]


def test_step_size_rule_is_the_authors():
  halves = lambda increases, reduced_last, best_last: np.asarray(
      apgd.halves_step_size(jnp.asarray(increases), 4, 0.75,
                            jnp.asarray(reduced_last), jnp.asarray(best_last),
                            jnp.asarray([1.0, 1.0])))
  # 3 of 4 steps raised the loss: at most rho = 0.75 of them, so it halves.
  np.testing.assert_array_equal(halves([3, 4], [True, True], [0.5, 0.5]),
                                [True, False])
  # Unchanged step size and best loss since the last checkpoint: halves.
  np.testing.assert_array_equal(halves([4, 4], [False, False], [1.0, 0.5]),
                                [True, False])


def test_dlr_losses_match_their_formulas():
  logits = jnp.asarray([[1.0, 4.0, 2.0, 0.5, 3.0]])
  label, target = jnp.asarray([2]), jnp.asarray([4])
  # Sorted: 4, 3, 2, 1, 0.5; the best other class than 2 has logit 4.
  dlr = apgd._loss(logits, label, None, "dlr")  # pylint: disable=protected-access
  np.testing.assert_allclose(dlr, [-(2.0 - 4.0) / (4.0 - 2.0)], rtol=1e-6)
  targeted = apgd._loss(logits, label, target, "dlr_targeted")  # pylint: disable=protected-access
  np.testing.assert_allclose(targeted, [-(2.0 - 3.0) / (4.0 - 1.5)], rtol=1e-6)


@pytest.mark.parametrize("settings,parameter", [
    (dict(norm="l1"), "norm"), (dict(loss="margin"), "loss"),
    (dict(steps=0), "steps"), (dict(restarts=0), "restarts"),
    (dict(rho=0.0), "rho"), (dict(rho=1.5), "rho"),
    (dict(loss="dlr_targeted", num_target_classes=0), "num_target_classes"),
    (dict(loss="dlr_targeted"), "loss"),  # needs 4 classes, the model has 3
])
def test_bad_parameters_raise(settings, parameter):
  images = jnp.zeros((2, 4, 4, 3))
  logits_fn = lambda x: jnp.mean(x, axis=(1, 2))  # 3 classes
  with pytest.raises(ParameterError) as raised:
    apgd.apgd(logits_fn, images, jnp.zeros((2,), jnp.int32),
              jnp.asarray([0.1]), jax.random.split(jax.random.key(0), 2),
              **settings)
  assert raised.value.parameter == parameter


ROW_SETTINGS = [(apgd.apgd_ce, dict(norm="linf", steps=5), LINF),
                (apgd.apgd_t, dict(norm="l2", steps=5, num_target_classes=2,
                                   restarts=2), L2)]


@pytest.mark.parametrize("attack,settings,epsilons", ROW_SETTINGS)
def test_radii_per_example_broadcast_is_bit_identical(attack, settings,
                                                       epsilons):
  check_broadcast_is_bit_identical(attack, epsilons[-2:], **settings)


@pytest.mark.parametrize("attack,settings,epsilons", ROW_SETTINGS)
def test_each_example_gets_its_own_radius(attack, settings, epsilons):
  check_each_example_gets_its_own_radius(attack, epsilons[-1], **settings)


def test_epsilons_of_another_shape_raise():
  with pytest.raises(ParameterError) as raised:
    apgd.apgd(lambda x: jnp.mean(x, axis=(1, 2)), jnp.zeros((2, 4, 4, 3)),
              jnp.zeros((2,), jnp.int32), jnp.zeros((1, 3)),
              jax.random.split(jax.random.key(0), 2))
  assert raised.value.parameter == "epsilons"
