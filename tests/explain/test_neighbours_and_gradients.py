"""Nearest neighbours in feature space; every attribution method on the shipped
digits model: saliency, gradient x input, SmoothGrad, integrated gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from digits_model import digits
from jaxaudit.errors import ConfigError, ParameterError
from jaxaudit.explain import METHODS, neighbours
from jaxaudit.explain.attribution import pixel_map
from jaxaudit.stages import explain as explain_stage


def test_neighbours_stay_in_class_skip_self_and_rank_by_cosine():
  ref = jnp.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [1.0, 0.05]])
  classes = jnp.array([0, 0, 0, 1])
  ids = jnp.array([10, 11, 12, 13])
  found = neighbours.nearest_in_class(ref[:1], jnp.array([0]), ids[:1], ref,
                                      classes, ids, 3)
  np.testing.assert_array_equal(found.index, [[1, 2, -1]])
  assert found.similarity[0, 0] > found.similarity[0, 1]


def _reference_gradients(model, params, images, targets):
  """d logit[target] / d image of each image on its own, by `jax.grad`."""
  one = lambda image, target: model.logits(params, image[None])[0, target]
  return jax.vmap(jax.grad(one))(images, targets)


def _check_integrated_gradients(model, params, images, targets, keys, out):
  # Completeness: the attributions sum to f(x) - f(black). 32 Gauss-Legendre
  # nodes placed by 64 probes leave at most ~1.6% on these digits; the stage
  # promises a few percent at most.
  logits = model.logits(params, jnp.concatenate([images, 0 * images]))
  picked = jnp.take_along_axis(logits, jnp.tile(targets, 2)[:, None], -1)[:, 0]
  delta = picked[:len(images)] - picked[len(images):]
  gap = jnp.abs(out.attributions.sum((1, 2, 3)) - delta) / jnp.abs(delta)
  assert float(gap.max()) < 0.05, gap
  np.testing.assert_allclose(out.scalars["completeness_error"], gap,
                             atol=1e-3)
  np.testing.assert_allclose(out.scalars["logit_delta"], delta, rtol=1e-4)
  # From a black baseline a black pixel never moves along the path: its
  # attribution is exactly 0 (about half of each digit is black background).
  assert not out.attributions[images == 0].any()
  del keys


def _check_saliency(model, params, images, targets, keys, out):
  np.testing.assert_allclose(
      out.attributions, _reference_gradients(model, params, images, targets),
      rtol=1e-4, atol=1e-5)
  del keys


def _check_gradient_x_input(model, params, images, targets, keys, out):
  np.testing.assert_allclose(
      out.attributions,
      images * _reference_gradients(model, params, images, targets),
      rtol=1e-4, atol=1e-5)
  del keys


def _check_smoothgrad(model, params, images, targets, keys, out):
  # Without noise it is the gradient; with it, no longer.
  cfg = explain_stage.default_config()
  cfg.smoothgrad.noise = 0.0
  gradients = _reference_gradients(model, params, images, targets)
  quiet = METHODS.get("smoothgrad")(cfg)(model.logits_fn(params), images,
                                         targets, keys)
  np.testing.assert_allclose(quiet.attributions, gradients, rtol=1e-4,
                             atol=1e-5)
  assert not np.allclose(out.attributions, gradients, rtol=0.1, atol=0.0)
  # Each example draws its noise from its own key, whatever the batch.
  alone = METHODS.get("smoothgrad")(explain_stage.default_config())(
      model.logits_fn(params), images[1:2], targets[1:2], keys[1:2])
  np.testing.assert_allclose(alone.attributions[0], out.attributions[1],
                             rtol=1e-4, atol=1e-5)


_CHECKS = {"integrated_gradients": _check_integrated_gradients,
           "saliency": _check_saliency,
           "gradient_x_input": _check_gradient_x_input,
           "smoothgrad": _check_smoothgrad}


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_explains_the_digit_it_is_given(name):
  # The shipped digits model on a zero, a one, a two and a three, with the
  # stage's default settings, explaining the true class.
  model, params, images, labels, keys = digits(4)
  out = METHODS.get(name)(explain_stage.default_config())(
      model.logits_fn(params), images, labels, keys)
  assert out.attributions.shape == images.shape
  assert bool(jnp.isfinite(out.attributions).all())
  # Different digits, different maps: the pixel maps of any two of them have
  # cosine similarity <= 0.74 here; a map that ignores the input has 1.
  maps = pixel_map(out.attributions).reshape(4, -1)
  maps = maps / jnp.linalg.norm(maps, axis=1, keepdims=True)
  cosine = np.asarray(maps @ maps.T)
  assert cosine[~np.eye(4, dtype=bool)].max() < 0.9, cosine
  _CHECKS[name](model, params, images, labels, keys, out)


def test_unknown_method_and_bad_fields_name_the_field():
  with pytest.raises(ConfigError, match="config.explain.methods"):
    METHODS.check("lime")
  cfg = explain_stage.default_config()
  cfg.ig.baseline = "grey"
  with pytest.raises(ParameterError, match="ig.baseline"):
    METHODS.get("integrated_gradients")(cfg)
