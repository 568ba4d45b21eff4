"""The ensemble classifier on the test model's real digits: its probabilities
are the members' mean, members of other input sizes see the input resized,
attacks on it flip its own prediction, and mismatched members are refused."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import digits_model
from jaxaudit.attacks import pgd
from jaxaudit.errors import ParameterError
from jaxaudit.models.ensemble import make_ensemble


def _members():
  """The shipped digits CNN and a second member: the same network with its
  weights perturbed (another, weaker digits classifier)."""
  model, params, images, labels, keys = digits_model.digits(32)
  leaves, tree = jax.tree.flatten(params)
  noisy = jax.tree.unflatten(tree, [
      leaf + 0.3 * jnp.std(leaf) * jax.random.normal(
          jax.random.key(i), leaf.shape, leaf.dtype)
      if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf
      for i, leaf in enumerate(leaves)])
  return (model, params), (model, noisy), images, labels, keys


def test_probabilities_are_the_members_mean():
  first, second, images, _, _ = _members()
  ensemble, params = make_ensemble([first, second])
  probs = jax.nn.softmax(ensemble.logits(params, images))
  expected = (jax.nn.softmax(first[0].logits(first[1], images))
              + jax.nn.softmax(second[0].logits(second[1], images))) / 2
  np.testing.assert_allclose(probs, expected, atol=1e-6)
  assert not np.allclose(expected, jax.nn.softmax(
      first[0].logits(first[1], images)), atol=1e-3)
  _, features = ensemble.logits_and_features(params, images)
  assert features.shape[-1] == 2 * first[0].features(first[1], images).shape[-1]


def test_a_member_of_another_input_size_sees_the_input_resized():
  (model, params), _, images, _, _ = _members()

  def upsampled_apply(p, x):  # Takes 24 x 24 inputs, like a bigger model.
    return model.apply_fn(p, jax.image.resize(x, x.shape[:1] + (16, 16, 3),
                                              "bilinear", antialias=True))

  bigger = dataclasses.replace(model, apply_fn=upsampled_apply,
                               input_size=24, features_fn=None,
                               name="digits_24")
  with pytest.raises(ParameterError, match=r"\[16, 24\] pixels: declare"):
    make_ensemble([(model, params), (bigger, params)])
  ensemble, both = make_ensemble([(model, params), (bigger, params)],
                                 input_size=16)
  resized = jax.image.resize(images, images.shape[:1] + (24, 24, 3),
                             "bilinear", antialias=True)
  expected = (jax.nn.softmax(model.logits(params, images))
              + jax.nn.softmax(bigger.logits(params, resized))) / 2
  np.testing.assert_allclose(jax.nn.softmax(ensemble.logits(both, images)),
                             expected, atol=1e-6)


def test_attacks_flip_the_ensembles_own_prediction():
  first, second, images, labels, keys = _members()
  ensemble, params = make_ensemble([first, second])
  logits_fn = ensemble.logits_fn(params)
  clean = np.asarray(logits_fn(images).argmax(-1))
  correct = clean == np.asarray(labels)
  result = jax.jit(functools.partial(pgd.pgd, logits_fn, norm="linf",
                                     steps=10, random_start=False))(
      images, labels, jnp.asarray([16 / 255]), keys)
  adv_class = np.asarray(logits_fn(result.clipped[0]).argmax(-1))
  np.testing.assert_array_equal(adv_class, np.asarray(result.adv_class[0]))
  flipped = correct & (adv_class != clean)
  assert correct.sum() >= 20 and flipped.sum() >= 0.6 * correct.sum()


def test_members_with_other_classes_are_refused():
  (model, params), _, _, _, _ = _members()
  renamed = model.with_class_names([f"c{i}" for i in range(10)])
  renamed = dataclasses.replace(renamed, name="renamed")
  with pytest.raises(ParameterError, match="digits_cnn and renamed have "
                                           "different class lists"):
    make_ensemble([(model, params), (renamed, params)])
  with pytest.raises(ParameterError, match="at least two"):
    make_ensemble([(model, params)])
