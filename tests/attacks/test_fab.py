"""FAB and FAB-T on the shipped test model and real test digits (FAB-T is
cross-checked against torchattacks inside standard AutoAttack,
tests/stages/test_autoattack.py)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attack_fixtures import L2, LINF, NUM_DIGITS, check_in_ball, digits
from attack_fixtures import check_broadcast_is_bit_identical
from attack_fixtures import check_each_example_gets_its_own_radius
from jaxaudit.attacks import deepfool, fab
from jaxaudit.errors import ParameterError

N = NUM_DIGITS


@functools.cache
def _run(name: str, reverse: bool = False, n: int = N, **hyperparameters):
  """`name` (fab.fab, fab.fab_t or deepfool.deepfool) jitted on the first n
  fixture images (the batch reversed if asked) -> AttackResult of arrays."""
  model, params, images, labels, keys = digits()
  images, labels, keys = images[:n], labels[:n], keys[:n]
  if reverse:
    images, labels, keys = images[::-1], labels[::-1], keys[::-1]
  attack = {"fab": fab.fab, "fab_t": fab.fab_t,
            "deepfool": deepfool.deepfool}[name]
  epsilons = LINF if hyperparameters["norm"] == "linf" else L2
  fn = jax.jit(functools.partial(attack, model.logits_fn(params),
                                 **hyperparameters))
  result = fn(images, labels, jnp.asarray(epsilons, jnp.float32), keys)
  return jax.tree.map(np.asarray, result)


def _correct(n: int = N) -> np.ndarray:
  model, params, images, labels, _ = digits()
  return (np.asarray(model.logits(params, images[:n])).argmax(-1)
          == np.asarray(labels[:n]))


def _check(result, norm: str) -> None:
  """Adversarials flip labels, lie in their balls, and are found for most
  correctly classified images; an epsilon counts one exactly where it covers
  its norm (the authors' acceptance rule), keeping it intact, and leaves the
  image elsewhere."""
  _, _, images, labels, _ = digits()
  epsilons = LINF if norm == "linf" else L2
  check_in_ball(result, images[:N], epsilons, norm)
  flipped = result.adv_class != np.asarray(labels[:N])[None]
  np.testing.assert_array_equal(flipped, result.success)
  correct = _correct()
  found = np.isfinite(result.min_norm)
  assert found[correct].mean() >= 0.8, found
  assert (result.min_norm[~correct] == 0).all()
  covered = result.min_norm[None] <= np.asarray(epsilons)[:, None]
  np.testing.assert_array_equal(result.success, covered)
  assert result.success.any() and not result.success.all()
  raw_norm = fab.common.lp_norm(result.raw - np.asarray(images[:N])[None],
                                norm)
  np.testing.assert_allclose(
      raw_norm, np.where(covered, result.min_norm[None], 0.0), rtol=1e-5,
      atol=1e-7)


def test_fab_t_linf_flips_labels_in_ball():
  _check(_run("fab_t", norm="linf", steps=10, num_target_classes=3), "linf")


def test_fab_l2_flips_labels_and_beats_deepfool():
  result = _run("fab", norm="l2", steps=10)
  _check(result, "l2")
  reference = _run("deepfool", norm="l2", steps=50)
  both = (np.isfinite(result.min_norm) & np.isfinite(reference.min_norm)
          & _correct())
  ours = np.median(result.min_norm[both])
  theirs = np.median(reference.min_norm[both])
  assert 0 < ours <= 2 * theirs, (ours, theirs)


def test_fab_is_batch_independent():
  forward = _run("fab", norm="l2", steps=10)
  backward = _run("fab", reverse=True, norm="l2", steps=10)
  np.testing.assert_allclose(backward.min_norm[::-1], forward.min_norm,
                             rtol=1e-4, atol=1e-6)
  np.testing.assert_array_equal(backward.success[:, ::-1], forward.success)


def test_restarts_only_improve():
  single = _run("fab_t", n=4, norm="linf", steps=3, num_target_classes=2)
  restarted = _run("fab_t", n=4, norm="linf", steps=3, num_target_classes=2,
                   restarts=2)
  assert (restarted.min_norm <= single.min_norm).all()
  assert (restarted.success >= single.success).all()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_onto_boundary(norm):
  rng = np.random.RandomState(0)
  points = rng.uniform(0.3, 0.7, (3, 50)).astype(np.float32)
  w = rng.randn(3, 50).astype(np.float32)
  w[:, :5] = 0.0
  excess = np.float32([1e-3, 2.0, 1e3])  # Interior, at the box, unreachable.
  b = np.sum(w * points, 1) - excess
  d = np.asarray(fab.project_to_boundary(jnp.asarray(points), jnp.asarray(w),
                                         jnp.asarray(b), norm))
  moved = points + d
  assert (moved >= 0).all() and (moved <= 1).all() and (d[:, :5] == 0).all()
  np.testing.assert_allclose(np.sum(w * moved, 1)[:2], b[:2], atol=1e-4)
  if norm == "linf":  # Interior: every weighted pixel moves by c / |w|_1.
    expected = -np.sign(w[0]) * excess[0] / np.abs(w[0]).sum()
  else:  # Interior: the plain projection c w / |w|^2.
    expected = -w[0] * excess[0] / np.sum(w[0] ** 2)
  np.testing.assert_allclose(d[0], expected, rtol=1e-4, atol=1e-8)
  # Unreachable: every weighted pixel goes to the bound in its direction.
  corner = np.where(w[2] > 0, 0.0, np.where(w[2] < 0, 1.0, points[2]))
  np.testing.assert_allclose(moved[2], corner, atol=1e-6)


@pytest.mark.parametrize("name,value", [
    ("norm", "l1"), ("steps", 0), ("restarts", 0), ("num_target_classes", 0),
    ("alpha_max", 0.0), ("alpha_max", 1.5), ("eta", 0.9), ("beta", 0.0),
    ("beta", 1.1)])
def test_bad_parameters(name, value):
  images = jnp.zeros((1, 4, 4, 3))
  with pytest.raises(ParameterError) as error:
    fab.fab(lambda x: jnp.zeros((x.shape[0], 3)), images, jnp.zeros(1, int),
            jnp.ones(1), jax.random.split(jax.random.key(0), 1),
            **{name: value})
  assert error.value.parameter == name


ROW_SETTINGS = [(fab.fab_t, dict(norm="linf", steps=5, num_target_classes=2,
                                  restarts=2), LINF),
                (fab.fab, dict(norm="l2", steps=5), L2)]


@pytest.mark.parametrize("attack,settings,epsilons", ROW_SETTINGS)
def test_radii_per_example_broadcast_is_bit_identical(attack, settings,
                                                       epsilons):
  check_broadcast_is_bit_identical(attack, epsilons[-2:], **settings)


@pytest.mark.parametrize("attack,settings,epsilons", ROW_SETTINGS)
def test_each_example_gets_its_own_radius(attack, settings, epsilons):
  mixed, uniform = check_each_example_gets_its_own_radius(
      attack, epsilons[-1], **settings)
  if "restarts" not in settings:  # Then nothing depends on the radius.
    np.testing.assert_array_equal(mixed.min_norm, uniform.min_norm)
