"""The pretrained CIFAR ResNet-20 and real CIFAR-10 test images, shared by the
attack tests (loaded once per test process)."""

import functools
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from conftest import CIFAR_DIR, require_shared
from jaxaudit import attacks, sharding
from jaxaudit.models import load_model

NUM_IMAGES = 32


@functools.cache
def cifar():
  """(classifier, params, images float32 [N, 32, 32, 3], labels int32 [N],
  keys [N])."""
  checkpoint = require_shared(os.path.join(CIFAR_DIR, "resnet20.th"))
  npz = require_shared(os.path.join(CIFAR_DIR, "test_jpeg.npz"))
  model, params = load_model(ml_collections.ConfigDict(dict(
      name="cifar_resnet20", checkpoint=checkpoint, cache_dir="",
      random_init_seed=-1)))
  data = np.load(npz)
  images = jnp.asarray(data["images"][:NUM_IMAGES] / 255.0, jnp.float32)
  labels = jnp.asarray(data["labels"][:NUM_IMAGES].astype(np.int32))
  keys = sharding.example_keys(jax.random.key(0), jnp.arange(NUM_IMAGES))
  return model, params, images, labels, keys


@functools.cache
def attack(name: str, epsilons: tuple[float, ...], **hyperparameters):
  """`name` run (jitted) on the CIFAR batch -> AttackResult of NumPy arrays."""
  model, params, images, labels, keys = cifar()
  fn = functools.partial(attacks.ATTACKS.get(name), model.logits_fn(params),
                         **hyperparameters)
  result = jax.jit(fn)(images, labels, jnp.asarray(epsilons, jnp.float32), keys)
  return jax.tree.map(np.asarray, result)


def clean_accuracy() -> float:
  model, params, images, labels, _ = cifar()
  return float((np.asarray(model.logits(params, images)).argmax(-1)
                == np.asarray(labels)).mean())


def check_in_ball(result, images, epsilons, norm: str) -> None:
  """Every clipped adversarial lies in its epsilon ball and in [0, 1]."""
  images = np.asarray(images)
  assert result.clipped.min() >= 0.0 and result.clipped.max() <= 1.0
  delta = result.clipped - images[None]
  if norm == "linf":
    size = np.abs(delta).max(axis=(2, 3, 4))
  else:
    size = np.sqrt((delta ** 2).sum(axis=(2, 3, 4)))
  assert (size <= np.asarray(epsilons)[:, None] * (1 + 1e-5) + 1e-6).all()
  np.testing.assert_allclose(result.norm, size, rtol=1e-4, atol=1e-6)
