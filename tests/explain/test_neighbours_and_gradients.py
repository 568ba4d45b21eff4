"""Nearest neighbours in feature space; saliency, gradient x input, SmoothGrad."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudit.errors import ConfigError, ParameterError
from jaxaudit.explain import METHODS, neighbours, saliency, smoothgrad
from jaxaudit.stages import explain as explain_stage
from tiny_model import images, make_logits_fn


def test_neighbours_stay_in_class_skip_self_and_rank_by_cosine():
  ref = jnp.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [1.0, 0.05]])
  classes = jnp.array([0, 0, 0, 1])
  ids = jnp.array([10, 11, 12, 13])
  found = neighbours.nearest_in_class(ref[:1], jnp.array([0]), ids[:1], ref,
                                      classes, ids, 3)
  np.testing.assert_array_equal(found.index, [[1, 2, -1]])
  assert found.similarity[0, 0] > found.similarity[0, 1]


def test_smoothgrad_without_noise_is_the_gradient():
  logits_fn, x = make_logits_fn(), images()
  targets = jnp.argmax(logits_fn(x), -1)
  keys = jax.random.split(jax.random.key(0), 4)
  np.testing.assert_allclose(
      smoothgrad.smoothgrad(logits_fn, x, targets, keys, samples=3, noise=0.0),
      saliency.vanilla_gradient(logits_fn, x, targets), rtol=1e-5, atol=1e-7)
  noisy = smoothgrad.smoothgrad(logits_fn, x, targets, keys, samples=3,
                                noise=0.3)
  assert not np.allclose(noisy, saliency.vanilla_gradient(logits_fn, x, targets))


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_returns_finite_attributions_of_image_shape(name):
  logits_fn, x = make_logits_fn(), images()
  targets = jnp.argmax(logits_fn(x), -1)
  cfg = explain_stage.default_config()
  cfg.ig.steps, cfg.smoothgrad.samples = 4, 2
  out = METHODS.get(name)(cfg)(logits_fn, x, targets,
                               jax.random.split(jax.random.key(0), 4))
  assert out.attributions.shape == x.shape
  assert bool(jnp.isfinite(out.attributions).all())
  assert float(jnp.abs(out.attributions).sum()) > 0


def test_unknown_method_and_bad_fields_name_the_field():
  with pytest.raises(ConfigError, match="config.explain.methods"):
    METHODS.check("lime")
  cfg = explain_stage.default_config()
  cfg.ig.baseline = "grey"
  with pytest.raises(ParameterError, match="ig.baseline"):
    METHODS.get("integrated_gradients")(cfg)
