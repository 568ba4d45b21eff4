"""`jaxaudit.Classifier` from a linen module, an NNX module or a bare function."""

import flax.linen as nn
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxaudit
from jaxaudit import classes


class _Linen(nn.Module):

  @nn.compact
  def __call__(self, x):
    features = nn.relu(nn.Conv(4, (3, 3))(x)).mean((1, 2))
    return nn.Dense(3)(features), features


class _Nnx(nnx.Module):

  def __init__(self, rngs):
    self.conv = nnx.Conv(3, 4, (3, 3), rngs=rngs)
    self.bn = nnx.BatchNorm(4, rngs=rngs)
    self.fc = nnx.Linear(4, 3, rngs=rngs)

  def __call__(self, x):
    return self.fc(nnx.relu(self.bn(self.conv(x))).mean((1, 2)))


def test_linen_classifier_normalises_then_applies():
  module = _Linen()
  norm = jaxaudit.Normalization(mean=(0.5, 0.4, 0.3), std=0.2)
  classifier = jaxaudit.Classifier.from_linen(
      module, input_size=8, class_names=("a", "b", "c"), normalization=norm)
  params = classifier.init_fn(jax.random.key(0))
  x = jax.random.uniform(jax.random.key(1), (2, 8, 8, 3))
  logits, features = classifier.logits_and_features(params, x)
  want = module.apply(params, (x - jnp.asarray([0.5, 0.4, 0.3])) / 0.2)
  np.testing.assert_allclose(logits, want[0], rtol=1e-6)
  assert features.shape == (2, 4)
  assert classifier.num_classes == 3
  assert classes.LabelSpace.of(classifier.class_names).kind == classes.CUSTOM
  np.testing.assert_allclose(norm.zero_pixel, [0.5, 0.4, 0.3])


def test_nnx_classifier_runs_in_eval_mode_under_jit():
  model = _Nnx(nnx.Rngs(0))
  classifier, state = jaxaudit.Classifier.from_nnx(model, input_size=8,
                                                   class_names=("a", "b", "c"))
  x = jax.random.uniform(jax.random.key(1), (4, 8, 8, 3))
  logits = jax.jit(classifier.logits)(state, x)
  # Eval mode: BatchNorm uses its running statistics, so one image's logits do
  # not depend on the rest of its batch.
  np.testing.assert_allclose(jax.jit(classifier.logits)(state, x[:1]),
                             logits[:1], rtol=1e-5, atol=1e-6)
  logits, features = classifier.logits_and_features(state, x)
  assert logits.shape == (4, 3) and features is None


def test_function_classifier_with_features_fn_and_known_label_spaces():
  def apply_fn(w, x):
    return x.mean((1, 2)) @ w

  classifier = jaxaudit.Classifier(
      apply_fn=apply_fn, input_size=4,
      class_names=("airplane", "automobile", "bird", "cat", "deer", "dog",
                   "frog", "horse", "ship", "truck"),
      features_fn=lambda w, x: x.mean((1, 2)))
  w = jnp.ones((3, 10))
  logits, features = classifier.logits_and_features(w, jnp.ones((2, 4, 4, 3)))
  assert logits.shape == (2, 10) and features.shape == (2, 3)
  assert classes.LabelSpace.of(classifier.class_names).kind == classes.CIFAR10
  assert classifier.output_shapes(w) == ((1, 10), (1, 3))
  with pytest.raises(TypeError, match="apply_fn"):
    jaxaudit.Classifier(apply_fn=None, input_size=4)
  with pytest.raises(ValueError, match="std"):
    jaxaudit.Normalization(std=0.0)
