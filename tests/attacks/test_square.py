"""Square Attack (L-inf and L2) on the shipped test model and real test digits:
labels flip inside the ball using outputs only, the schedule and the L2 pattern
are the paper's, results do not depend on the batch."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attack_fixtures import L2, LINF, check_in_ball, digits
from attack_fixtures import check_broadcast_is_bit_identical
from attack_fixtures import check_each_example_gets_its_own_radius
from jaxaudit.attacks import apgd, square
from jaxaudit.errors import ParameterError

N = 16
QUERIES = 1000


@functools.cache
def _jitted(norm: str, rounded: bool, attack, **hyperparameters):
  """`attack` on the test model, jitted once for both batch orders; `rounded`
  puts a zero-gradient rounding after the model."""
  model, params, _, _, _ = digits()
  logits_fn = model.logits_fn(params)
  if rounded:  # Masks every input gradient (d round / dx = 0).
    logits_fn = lambda x, f=logits_fn: jnp.round(f(x) * 4.0)
  return jax.jit(functools.partial(attack, logits_fn, norm=norm,
                                   **hyperparameters))


@functools.cache
def _run(norm: str, reverse: bool = False, rounded: bool = False,
         attack=square.square, **hyperparameters):
  """`attack` jitted on the first N digits -> (AttackResult of arrays,
  labels)."""
  _, _, images, labels, keys = digits()
  images, labels, keys = images[:N], labels[:N], keys[:N]
  if reverse:
    images, labels, keys = images[::-1], labels[::-1], keys[::-1]
  epsilons = LINF if norm == "linf" else L2
  fn = _jitted(norm, rounded, attack, **hyperparameters)
  result = fn(images, labels, jnp.asarray(epsilons, jnp.float32), keys)
  return jax.tree.map(np.asarray, result), np.asarray(labels)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_square_flips_labels_inside_the_ball(norm):
  result, labels = _run(norm, queries=QUERIES)
  _, _, images, _, _ = digits()
  epsilons = LINF if norm == "linf" else L2
  check_in_ball(result, images[:N], epsilons, norm)
  np.testing.assert_array_equal(result.success,
                                result.adv_class != labels[None])
  robust = (result.adv_class == labels[None]).mean(axis=1)
  assert (np.diff(robust) <= 0).all(), robust
  assert robust[-1] <= 0.25 and robust[0] > robust[-1], robust
  if norm == "l2":  # The L2 search always uses its whole budget.
    unfooled = ~result.success
    np.testing.assert_allclose(result.norm[unfooled],
                               np.broadcast_to(np.asarray(L2)[:, None],
                                               unfooled.shape)[unfooled],
                               rtol=0.05)


def test_square_needs_no_gradients():
  """Behind a rounding every gradient is zero: APGD is stuck, Square is not."""
  result, labels = _run("linf", rounded=True, queries=QUERIES)
  blind, _ = _run("linf", rounded=True, attack=apgd.apgd_ce, steps=10)
  fooled = result.success[-1].mean()
  assert fooled >= 0.5 and fooled > blind.success[-1].mean(), (
      fooled, blind.success[-1].mean())


def test_square_does_not_depend_on_the_batch():
  forward, _ = _run("l2", queries=20)
  backward, _ = _run("l2", reverse=True, queries=20)
  np.testing.assert_array_equal(backward.success[:, ::-1], forward.success)
  np.testing.assert_allclose(backward.clipped[:, ::-1], forward.clipped,
                             atol=1e-5)


def test_schedule_is_the_papers():
  """p halves after 10, 50, 200, 500, 1k, 2k, 4k, 6k and 8k queries, whatever
  the budget (AutoAttack's `resc_schedule=False`), or after those shares of
  10k queries if rescaled."""
  for queries in (10000, 5000):
    p = [float(square.fraction(q, queries, 0.8)) for q in
         (0, 10, 11, 50, 51, 1000, 1001, 4999)]
    np.testing.assert_allclose(p, [0.8, 0.8, 0.4, 0.4, 0.2, 0.8 / 16,
                                   0.8 / 32, 0.8 / 128])
  p = [float(square.fraction(q, 10000, 0.8, rescale=True)) for q in
       (0, 10, 11, 50, 51, 8000, 8001, 9999)]
  np.testing.assert_allclose(p, [0.8, 0.8, 0.4, 0.4, 0.2, 0.8 / 256,
                                 0.8 / 512, 0.8 / 512])
  # floor(q * 10000 / 5000) passes 1000 at q = 501 and 2000 at q = 1001.
  p = [float(square.fraction(q, 5000, 0.8, rescale=True)) for q in
       (500, 501, 1000, 1001)]
  np.testing.assert_allclose(p, [0.8 / 16, 0.8 / 32, 0.8 / 32, 0.8 / 64])


@pytest.mark.parametrize("seed", range(4))
def test_l2_proposal_keeps_each_channels_mass(seed):
  """With the perturbation at norm eps (no room left) and no pixel clipped,
  the mass each channel has in both windows moves into the first (the
  reference's per-channel norms), so every channel keeps its norm."""
  image = jnp.full((16, 16, 3), 0.5)
  delta = jax.random.normal(jax.random.key(seed), image.shape)
  delta = delta * jnp.asarray([0.25, 1.0, 3.0])
  eps = 0.2
  delta = eps * delta / jnp.linalg.norm(delta)
  for side in (3, 5):
    proposal = square._l2_proposal(  # pylint: disable=protected-access
        jax.random.key(100 + seed), image, image + delta, eps, jnp.int32(side))
    channel_norms = lambda d: np.sqrt((np.asarray(d) ** 2).sum(axis=(0, 1)))
    assert 0.0 < float(proposal.min()) and float(proposal.max()) < 1.0
    np.testing.assert_allclose(channel_norms(proposal - image),
                               channel_norms(delta), rtol=1e-4)


def _rectangle(height, width):
  """The paper's concentric squares, drawn ring by ring."""
  out = np.zeros((height, width))
  for k in range(max(height // 2, width // 2) + 1):
    top, left = height // 2 - k, width // 2 - k
    out[max(top, 0):top + 2 * k + 1, max(left, 0):left + 2 * k + 1] += (
        1.0 / (k + 1) ** 2)
  return out / np.sqrt((out ** 2).sum())


@pytest.mark.parametrize("size", [3, 4, 7, 29])
def test_l2_pattern_is_the_papers(size):
  top_half = _rectangle(size // 2, size)
  bottom_half = _rectangle(size - size // 2, size)
  expected = np.concatenate([top_half, -bottom_half]) / np.sqrt(2.0)
  for transpose in (False, True):
    got = np.asarray(square.pattern((32, 32), jnp.int32(2), jnp.int32(1),
                                    jnp.int32(size), transpose))
    want = np.zeros((32, 32))
    want[2:2 + size, 1:1 + size] = expected.T if transpose else expected
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("name,value", [("norm", "l1"), ("queries", 0),
                                        ("restarts", 0), ("p_init", 0.0),
                                        ("p_init", 1.5)])
def test_bad_parameters(name, value):
  with pytest.raises(ParameterError) as error:
    square.square(lambda x: jnp.zeros((x.shape[0], 3)),
                  jnp.zeros((1, 4, 4, 3)), jnp.zeros(1, int), jnp.ones(1),
                  jax.random.split(jax.random.key(0), 1), **{name: value})
  assert error.value.parameter == name


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_radii_per_example_broadcast_is_bit_identical(norm):
  check_broadcast_is_bit_identical(square.square,
                                   (LINF if norm == "linf" else L2)[-2:],
                                   norm=norm, queries=30)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_each_example_gets_its_own_radius(norm):
  check_each_example_gets_its_own_radius(
      square.square, (LINF if norm == "linf" else L2)[-1], norm=norm,
      queries=30)
