"""Integrated gradients agree with Captum's on identical weights (CIFAR ResNet-20)."""

import os

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import CIFAR_DIR, require_shared
from jaxaudit import weights
from jaxaudit.explain import integrated_gradients as ig
from jaxaudit.models.loading import load_model


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_middle"])
def test_ig_matches_captum_on_real_cifar_images(rule):
  captum_attr = pytest.importorskip("captum.attr")
  torch = pytest.importorskip("torch")
  from benchmarks.torch_models import CifarResNet
  checkpoint = require_shared(os.path.join(CIFAR_DIR, "resnet20.th"))
  data = np.load(os.path.join(CIFAR_DIR, "test_jpeg.npz"))
  images = (data["images"][:3] / 255.0).astype(np.float32)
  model, params = load_model(ml_collections.ConfigDict(dict(
      name="cifar_resnet20", checkpoint=checkpoint, cache_dir="",
      random_init_seed=-1)))
  torch_model = CifarResNet(20).load_numpy_state(
      weights.load_state_dict(checkpoint))
  logits_fn = model.logits_fn(params)
  targets = np.argmax(np.asarray(logits_fn(jnp.asarray(images))), -1)
  ours = ig.integrated_gradients(
      logits_fn, jnp.asarray(images), jnp.zeros_like(jnp.asarray(images)),
      jnp.asarray(targets), steps=16, chunk=8, rule=rule)
  inputs = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  theirs = captum_attr.IntegratedGradients(torch_model).attribute(
      inputs, baselines=torch.zeros_like(inputs),
      target=torch.from_numpy(targets), n_steps=16, method=rule,
      internal_batch_size=24)
  theirs = theirs.detach().numpy().transpose(0, 2, 3, 1)
  ours = np.asarray(ours.attributions)
  relative = np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)
  assert relative < 1e-3
  np.testing.assert_allclose(ours, theirs, atol=1e-3 * np.abs(theirs).max())
