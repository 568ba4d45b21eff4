"""CIFAR ResNet-20/56: the shared pretrained weights on real CIFAR-10 images."""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import CIFAR_DIR, require_shared
from jaxaudit.models import load_model


@pytest.mark.parametrize("depth", [20, 56])
def test_pretrained_accuracy_on_real_images(depth):
  path = require_shared(os.path.join(CIFAR_DIR, f"resnet{depth}.th"))
  model, params = load_model(ml_collections.ConfigDict(
      {"name": f"cifar_resnet{depth}", "checkpoint": path}))
  with np.load(os.path.join(CIFAR_DIR, "test_jpeg.npz")) as npz:
    images, labels = npz["images"][:1000], npz["labels"][:1000]
  logits = jax.jit(model.logits)(params, jnp.asarray(images, jnp.float32) / 255)
  accuracy = float((np.asarray(logits).argmax(-1) == labels).mean())
  assert accuracy >= 0.77, accuracy


def test_trainable_from_random_init():
  """Random init + train-mode BatchNorm: the model the retrain stage starts from."""
  model, variables = load_model(ml_collections.ConfigDict(
      {"name": "cifar_resnet20", "random_init_seed": 0}))
  x = jnp.ones((4, 32, 32, 3)) * 0.5
  (logits, features), updates = model.module.apply(
      variables, model.normalization(x), train=True, mutable=["batch_stats"])
  assert logits.shape == (4, 10) and features.shape == (4, 64)
  assert "batch_stats" in updates
