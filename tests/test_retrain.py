"""Retraining on pixel subsets: a few optax steps, orbax resume, the entry point."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import CIFAR_DIR, require_shared
from jaxaudit import sharding
from jaxaudit import retrain


def _config():
  from configs import cifar10_sis_retrain  # pylint: disable=g-import-not-at-top
  config = cifar10_sis_retrain.get_config("fast")
  config.model.checkpoint = os.path.join(CIFAR_DIR, "resnet20.th")
  config.data.npz = os.path.join(CIFAR_DIR, "test_jpeg.npz")
  return config


def test_subset_images_keep_only_top_ranked_pixels():
  images = np.full((1, 2, 2, 3), 255, np.uint8)
  ranks = np.asarray([[3, 0, 2, 1]])
  out = retrain.subset_images(images, ranks, 0.5, np.full(3, 0.25, np.float32))
  np.testing.assert_allclose(out[0, :, :, 0], [[0.25, 1.0], [0.25, 1.0]])


def test_random_ranks_depend_on_the_example_only():
  a = retrain.random_ranks(0, 5, 16)
  b = retrain.random_ranks(0, 3, 16)
  np.testing.assert_array_equal(a[:3], b)
  np.testing.assert_array_equal(np.sort(a, 1), np.tile(np.arange(16), (5, 1)))


@pytest.mark.slow
def test_training_lowers_the_loss_on_a_fixed_batch():
  config = _config()
  config.train.num_steps = 20
  config.train.learning_rate = 0.02
  config.train.weight_decay = 0.0
  from jaxaudit.models.loading import load_model  # pylint: disable=g-import-not-at-top
  config.model.random_init_seed = 0
  model, variables = load_model(config.model)
  tx = retrain.make_optimizer(config.train)
  state = retrain.TrainState(variables["params"], variables["batch_stats"],
                             tx.init(variables["params"]),
                             jnp.zeros((), jnp.int32))
  rng = np.random.RandomState(0)
  images = jnp.asarray(rng.rand(8, 32, 32, 3), jnp.float32)
  labels = jnp.arange(8) % 10
  _, losses = jax.jit(lambda s: retrain.train_chunk(
      retrain.training_apply(model), tx, s, images, labels, jax.random.key(0),
      batch_size=8, num_steps=20))(state)
  losses = np.asarray(losses)
  assert losses[-5:].mean() < 0.5 * losses[:5].mean(), losses


@pytest.mark.slow
def test_retrain_runs_and_resumes(tmp_path):
  require_shared(os.path.join(CIFAR_DIR, "test_jpeg.npz"))
  config = _config()
  mesh = sharding.make_mesh()
  first = retrain.run(config, str(tmp_path), mesh)
  assert set(first) == {"sis", "random"}
  for result in first.values():
    assert 0.0 <= result["accuracy"] <= 1.0 and np.isfinite(result["final_loss"])
  ranks = np.load(tmp_path / "ranks.npy")
  np.testing.assert_array_equal(np.sort(ranks, 1), np.tile(np.arange(1024), (64, 1)))
  assert (tmp_path / "sis" / "4").is_dir()  # orbax checkpoint of the last step.
  # A second run restores the finished state: nothing is retrained.
  again = retrain.run(config, str(tmp_path), mesh)
  assert {k: v["accuracy"] for k, v in again.items()} == {
      k: v["accuracy"] for k, v in first.items()}
