"""Every registered attack: the shared contract on the shipped test model and
real test digits, with properties an attack that does nothing fails."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attack_fixtures import L2, LINF, attack, check_in_ball, digits
from jaxaudit import attacks, compile_options
from jaxaudit.attacks import common
from jaxaudit.errors import ConfigError

EPSILONS = {"linf": LINF, "l2": L2}
# Each attack's settings (with its norm where it takes one): a second or so on
# the digits, and still strong at the largest epsilon.
SETTINGS = {
    "fgsm": {},
    "pgd_linf": {"steps": 10},
    "pgd_l2": {"steps": 10},
    "deepfool": {"norm": "l2", "steps": 20},
    "cw_l2": {"steps": 30, "binary_search_steps": 3, "stepsize": 0.05,
              "initial_const": 1.0},
    "fmn_linf": {"steps": 20},
    # FMN-L2 stalls on the digits' saturated pixels with its default step 1.0.
    "fmn_l2": {"steps": 50, "alpha_init": 0.1},
    "apgd_ce": {"norm": "linf", "steps": 10},
    "apgd_t": {"norm": "l2", "steps": 10, "num_target_classes": 3},
    "fab_t": {"norm": "linf", "steps": 10, "num_target_classes": 3},
    "square": {"norm": "linf", "queries": 300},
    "autoattack": {"norm": "linf", "steps": 5, "queries": 50,
                   "num_target_classes": 3},
}
# Attacks that search for the smallest adversarial (`min_norm` is its norm).
MINIMAL = ("deepfool", "cw_l2", "fmn_linf", "fmn_l2", "fab_t")
MOST = 0.6  # Share of the digits an attack flips at the largest epsilon.
SMALLEST_NORM = 1e-4  # Below any minimal adversarial the digits have.


@functools.cache
def _predict():
  """images [M, 16, 16, 3] -> logits [M, 10] of the test model, jitted."""
  model, params, _, _, _ = digits()
  return compile_options.jit(model.logits_fn(params))


@functools.cache
def _noise_flips(norm: str) -> float:
  """Share of the digits misclassified under random noise of the largest
  epsilon: random signs (L-inf) or a random direction (L2), clipped to
  [0, 1]."""
  _, _, images, labels, _ = digits()
  eps = EPSILONS[norm][-1]
  direction = jax.random.normal(jax.random.key(1), images.shape)
  if norm == "linf":
    noise = eps * jnp.sign(direction)
  else:
    norms = common.lp_norm(direction, "l2")
    noise = eps * direction / norms[:, None, None, None]
  noisy = jnp.clip(images + noise, 0.0, 1.0)
  return float((np.asarray(_predict()(noisy)).argmax(-1)
                != np.asarray(labels)).mean())


def _run(name: str) -> attacks.AttackResult:
  """Attack `name` with its `SETTINGS` on the digits (cached)."""
  settings = SETTINGS[name]
  norm = attacks.ATTACKS.get(name).norm_of(settings)
  return attack(name, EPSILONS[norm], **settings)


def _check_contract(name: str, result: attacks.AttackResult) -> None:
  """Asserts the contract of every attack on `result` (NumPy arrays), the
  result of attack `name` with its `SETTINGS` on the digits."""
  _, _, images, labels, _ = digits()
  labels = np.asarray(labels)
  norm = attacks.ATTACKS.get(name).norm_of(SETTINGS[name])
  epsilons = EPSILONS[norm]
  shape = (len(epsilons), len(labels))
  assert result.raw.shape == result.clipped.shape == shape + images.shape[1:]
  assert result.success.shape == result.norm.shape == shape
  assert result.adv_class.shape == shape and result.min_norm.shape == shape[1:]
  check_in_ball(result, images, epsilons, norm)
  np.testing.assert_array_equal(result.success,
                                result.adv_class != labels[None])
  # `adv_class` is the model's class for the clipped adversarial (ties within
  # float rounding aside).
  logits = np.asarray(_predict()(result.clipped.reshape((-1,) +
                                                        images.shape[1:])))
  logits = logits.reshape(shape + logits.shape[-1:])
  own = np.take_along_axis(logits, result.adv_class[..., None], -1)[..., 0]
  assert (own >= logits.max(-1) - 1e-3).all(), name
  correct = np.asarray(_predict()(images)).argmax(-1) == labels
  flipped = result.success[-1][correct].mean()
  noise = _noise_flips(norm)
  assert flipped >= MOST and noise <= flipped / 4, (name, flipped, noise)
  robust = (result.adv_class == labels[None]).mean(axis=1)
  assert (np.diff(robust) <= 0).all(), (name, robust)
  if name in MINIMAL:
    min_norm = result.min_norm[correct]
    found = np.isfinite(min_norm)
    assert found.mean() >= MOST, (name, found.mean())
    assert (min_norm[found] >= SMALLEST_NORM).all(), (name, min_norm.min())
    # At an epsilon above an example's minimal norm its adversarial is intact.
    covered = result.min_norm[None] < np.asarray(epsilons)[:, None]
    assert result.success[covered].all(), name


@pytest.mark.parametrize("name", attacks.ATTACKS.names())
def test_contract(name):
  _check_contract(name, _run(name))


def test_unknown_attack_lists_valid_names():
  with pytest.raises(ConfigError, match="pgd_linf"):
    attacks.ATTACKS.get("pgd_l3")


def test_projection_keeps_inside_ball():
  delta = jax.random.normal(jax.random.key(3), (5, 4, 4, 3))
  for norm in common.NORMS:
    out = common.project(delta, 0.3, norm)
    assert (np.asarray(common.lp_norm(out, norm)) <= 0.3 + 1e-6).all()
    inside = delta * 1e-3
    np.testing.assert_allclose(common.project(inside, 0.3, norm), inside,
                               rtol=1e-6)
