"""Every registered attack: the shared contract on a tiny random model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudit import attacks
from jaxaudit.attacks import common
from jaxaudit.errors import ConfigError


def _linear_model():
  w = jax.random.normal(jax.random.key(0), (4 * 4 * 3, 5))
  return lambda x: x.reshape(x.shape[0], -1) @ w


@pytest.mark.parametrize("name", attacks.ATTACKS.names())
def test_contract(name):
  logits_fn = _linear_model()
  images = jax.random.uniform(jax.random.key(1), (6, 4, 4, 3))
  labels = jnp.argmax(logits_fn(images), -1)
  keys = jax.random.split(jax.random.key(2), 6)
  eps = jnp.asarray([0.05, 0.5])
  kwargs = {"fgsm": {}, "cw_l2": {"steps": 3, "binary_search_steps": 2},
            "square": {"queries": 5},
            "autoattack": {"steps": 2, "queries": 5,
                           "num_target_classes": 3}}.get(name, {"steps": 2})
  result = jax.jit(lambda *a: attacks.ATTACKS.get(name)(logits_fn, *a,
                                                        **kwargs))(
                                                            images, labels,
                                                            eps, keys)
  assert isinstance(result, attacks.AttackResult)
  assert result.raw.shape == result.clipped.shape == (2, 6, 4, 4, 3)
  assert result.success.shape == result.norm.shape == (2, 6)
  assert result.adv_class.shape == (2, 6) and result.min_norm.shape == (6,)
  assert (np.asarray(result.norm) <= np.asarray(eps)[:, None] + 1e-5).all()
  np.testing.assert_array_equal(
      np.asarray(result.success),
      np.asarray(result.adv_class) != np.asarray(labels)[None])


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
