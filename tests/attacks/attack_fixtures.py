"""What the attack tests share: the shipped test model (`digits_cnn`) on real
test digits, which needs nothing from outside the repository (loaded once per
test process), and attack runs on them."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

import digits_model
from jaxaudit import attacks, compile_options

NUM_DIGITS = 64  # All classified correctly by the shipped model.
# Epsilons ([0, 1] pixel units) from where the test model resists most attacks
# to where the strong ones flip nearly every digit.
LINF = (4 / 255, 8 / 255, 16 / 255, 32 / 255)
L2 = (0.25, 0.5, 1.0, 2.0)


def digits():
  """(classifier, params, images float32 [NUM_DIGITS, 16, 16, 3] in [0, 1],
  labels int32 [NUM_DIGITS], keys [NUM_DIGITS]): the first test digits."""
  return digits_model.digits(NUM_DIGITS)


@functools.cache
def attack(name: str, epsilons: tuple[float, ...],
           **hyperparameters) -> attacks.AttackResult:
  """`name` run (jitted) on the digits -> AttackResult of NumPy arrays."""
  model, params, images, labels, keys = digits()
  fn = functools.partial(attacks.ATTACKS.get(name).fn,
                         model.logits_fn(params), **hyperparameters)
  result = compile_options.jit(fn)(images, labels,
                                   jnp.asarray(epsilons, jnp.float32), keys)
  return jax.tree.map(np.asarray, result)


def clean_accuracy() -> float:
  """Accuracy of the test model on the digits."""
  model, params, images, labels, _ = digits()
  return float((np.asarray(model.logits(params, images)).argmax(-1)
                == np.asarray(labels)).mean())


def check_in_ball(result, images, epsilons, norm: str) -> None:
  """Every clipped adversarial lies in its epsilon ball and in [0, 1], and
  `result.norm` is its measured norm."""
  images = np.asarray(images)
  assert result.clipped.min() >= 0.0 and result.clipped.max() <= 1.0
  delta = result.clipped - images[None]
  if norm == "linf":
    size = np.abs(delta).max(axis=(2, 3, 4))
  else:
    size = np.sqrt((delta ** 2).sum(axis=(2, 3, 4)))
  assert (size <= np.asarray(epsilons)[:, None] * (1 + 1e-5) + 1e-6).all()
  np.testing.assert_allclose(result.norm, size, rtol=1e-4, atol=1e-6)


PER_ROW = 8  # Examples in the per-example radius checks.


@functools.cache
def _per_row_fn(attack, settings: tuple):
  model, params, _, _, _ = digits()
  return jax.jit(functools.partial(attack, model.logits_fn(params),
                                   **dict(settings)))


def per_row(attack, epsilons, **settings) -> attacks.AttackResult:
  """`attack` (jitted) on the first PER_ROW digits at `epsilons` ([E] or
  [E, PER_ROW]) -> AttackResult of NumPy arrays."""
  _, _, images, labels, keys = digits()
  result = _per_row_fn(attack, tuple(sorted(settings.items())))(
      images[:PER_ROW], labels[:PER_ROW], jnp.asarray(epsilons, jnp.float32),
      keys[:PER_ROW])
  return jax.tree.map(np.asarray, result)


def check_broadcast_is_bit_identical(attack, epsilons, **settings) -> None:
  """Radii [E, B] broadcast from [E] give exactly the [E] call's results."""
  epsilons = np.asarray(epsilons, np.float32)
  uniform = per_row(attack, epsilons, **settings)
  rows = per_row(attack, np.repeat(epsilons[:, None], PER_ROW, 1), **settings)
  for field, ours, theirs in zip(uniform._fields, rows, uniform):
    np.testing.assert_array_equal(ours, theirs, err_msg=field)


def check_each_example_gets_its_own_radius(attack, eps: float, **settings):
  """Rows alternating between radius 0 and `eps`: the zero rows are never
  fooled and unperturbed, the others match a call at `eps` for every row.

  Returns:
    (mixed, uniform) results, for checks of one attack.
  """
  zero = np.stack([np.arange(PER_ROW) % 2 == 0, np.arange(PER_ROW) % 2 == 1])
  mixed = per_row(attack, np.where(zero, 0.0, eps), **settings)
  uniform = per_row(attack, np.full(zero.shape, eps), **settings)
  assert not mixed.success[zero].any() and (mixed.norm[zero] == 0).all()
  assert uniform.success.any()
  np.testing.assert_array_equal(mixed.success[~zero], uniform.success[~zero])
  np.testing.assert_allclose(mixed.clipped[~zero], uniform.clipped[~zero],
                             atol=1e-6)
  return mixed, uniform
