"""Retraining's pure pieces: subset masks, masked inputs, training in chunks of
`lax.scan` steps on models with and without batch statistics."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxaudit import sharding
from jaxaudit.data import digits
from jaxaudit.models import load_model
from jaxaudit.sis import retraining


def test_subset_masks_keep_exactly_the_top_ranked_features():
  ranks = np.stack([np.random.RandomState(i).permutation(16) for i in range(4)])
  keys = sharding.example_keys(jax.random.key(0), jnp.arange(4))
  top, random = map(np.asarray, retraining.subset_masks(
      jnp.asarray(ranks), keys, 3))
  np.testing.assert_array_equal(top, ranks < 3)
  np.testing.assert_array_equal(random.sum(1), [3, 3, 3, 3])
  # A random subset depends on its example's key alone, not on the batch.
  _, alone = retraining.subset_masks(jnp.asarray(ranks[2:3]), keys[2:3], 3)
  np.testing.assert_array_equal(np.asarray(alone)[0], random[2])
  assert not np.array_equal(random[0], random[1])


def test_masked_images_keep_the_features_and_fill_the_rest():
  images = jnp.full((1, 4, 4, 3), 255, jnp.uint8)
  keep = jnp.asarray([[False, True, False, False]])  # 2x2 blocks.
  out = np.asarray(retraining.masked_images(
      images, keep, jnp.asarray([0.1, 0.2, 0.3]), 2))
  np.testing.assert_allclose(out[0, :2, 2:], 1.0)
  fill = np.broadcast_to([0.1, 0.2, 0.3], (2, 2, 3))
  for rows, cols in ((slice(0, 2), slice(0, 2)), (slice(2, 4), slice(0, 2)),
                     (slice(2, 4), slice(2, 4))):
    np.testing.assert_allclose(out[0, rows, cols], fill, rtol=1e-6)


def _setup(name, size, steps, learning_rate=0.1):
  """A fresh model, its first state, and `chunk(state, num_steps)` training it
  on 8 digits with half their pixels kept (scaled up to `size`)."""
  model, _ = load_model(ml_collections.ConfigDict(
      {"name": name, "random_init_seed": 0}))
  settings = retraining.TrainSettings(
      batch_size=8, num_steps=steps, learning_rate=learning_rate,
      warmup_steps=1, weight_decay=0.0, horizontal_flip=False, block_size=1)
  tx = retraining.make_optimizer(settings)
  state = retraining.init_state(model, jax.random.key(0), tx)
  images, labels = digits.digit_images("train")
  scale = size // digits.SIZE
  images = images[:8].repeat(scale, 1).repeat(scale, 2)
  keep = np.random.RandomState(0).rand(8, size * size) < 0.5
  data = retraining.TrainingSet(jnp.asarray(images), jnp.asarray(keep),
                                jnp.asarray(labels[:8], jnp.int32))
  train = jax.jit(functools.partial(
      retraining.train_chunk, retraining.training_apply(model), tx,
      settings=settings), static_argnames="num_steps")

  def chunk(state, num_steps):
    return train(state, data, jnp.full((3,), 0.2), jax.random.key(1),
                 num_steps=num_steps)

  return state, chunk


@pytest.mark.parametrize("name,size,steps,learning_rate", [
    ("digits_cnn", 16, 80, 0.1),  # No batch statistics, no `train` argument.
    pytest.param("cifar_resnet20", 32, 20, 0.02,  # BatchNorm.
                 marks=pytest.mark.slow)])
def test_training_lowers_the_loss(name, size, steps, learning_rate):
  state, chunk = _setup(name, size, steps, learning_rate)
  trained, losses = chunk(state, steps)
  losses = np.asarray(losses)
  assert losses[-5:].mean() < 0.6 * losses[:5].mean(), losses
  assert int(trained.step) == steps
  assert set(trained.model_state) == set(state.model_state)
  if state.model_state:  # BatchNorm's running averages moved.
    before, after = (jax.tree.leaves(s.model_state) for s in (state, trained))
    assert any(not np.allclose(a, b) for a, b in zip(before, after))


def test_chunks_take_the_same_steps_as_one_scan():
  """What resuming from a checkpoint relies on: step t draws from the run's
  key and t alone."""
  state, chunk = _setup("digits_cnn", 16, 6)
  whole, _ = chunk(state, 6)
  half, _ = chunk(state, 3)
  resumed, _ = chunk(half, 3)
  for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(resumed)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
