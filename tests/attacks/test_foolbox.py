"""Cross-check against Foolbox 3 on PyTorch, identical weights and images: C&W
and DeepFool minimal L2 perturbations at matched settings (slow)."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attack_fixtures import cifar
from conftest import CIFAR_DIR, require_shared
from jaxaudit.attacks import cw, deepfool
from jaxaudit.weights import load_state_dict

N = 100


@functools.cache
def _setup():
  """(logits_fn, images [N, 32, 32, 3], labels [N], Foolbox model, torch
  images, torch labels, clean-correct mask)."""
  torch = pytest.importorskip("torch")
  fb = pytest.importorskip("foolbox")
  from benchmarks import torch_models  # pylint: disable=g-import-not-at-top
  model, params = cifar()[:2]
  with np.load(require_shared(os.path.join(CIFAR_DIR, "test_jpeg.npz"))) as npz:
    images = (npz["images"][:N] / 255.0).astype(np.float32)
    labels = npz["labels"][:N].astype(np.int64)
  net = torch_models.CifarResNet(20).load_numpy_state(
      load_state_dict(os.path.join(CIFAR_DIR, "resnet20.th")))
  fmodel = fb.PyTorchModel(net, bounds=(0.0, 1.0))
  x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  y = torch.from_numpy(labels)
  logits_fn = model.logits_fn(params)
  correct = np.asarray(logits_fn(jnp.asarray(images))).argmax(-1) == labels
  return logits_fn, images, labels, fmodel, x, y, correct


def _theirs(attack):
  """Foolbox's minimal L2 norms [N] (inf where it failed)."""
  _, images, _, fmodel, x, y, _ = _setup()
  raw, _, success = attack(fmodel, x, y, epsilons=None)
  size = np.sqrt(((raw.numpy().transpose(0, 2, 3, 1) - images) ** 2).sum(
      axis=(1, 2, 3)))
  return np.where(success.numpy(), size, np.inf)


def _ours(attack, **settings):
  logits_fn, images, labels, _, _, _, _ = _setup()
  result = jax.jit(functools.partial(attack, logits_fn, **settings))(
      jnp.asarray(images), jnp.asarray(labels, jnp.int32),
      jnp.asarray([np.inf], jnp.float32),
      jax.random.split(jax.random.key(0), N))
  return np.asarray(result.min_norm)


def _median(norms, rows):
  return float(np.median(norms[rows]))


@pytest.mark.slow
def test_deepfool_matches_foolbox():
  import foolbox as fb  # pylint: disable=g-import-not-at-top
  correct = _setup()[-1]
  theirs = _theirs(fb.attacks.L2DeepFoolAttack(steps=50, candidates=10,
                                               overshoot=0.02, loss="logits"))
  ours = _ours(deepfool.deepfool, norm="l2", steps=50, candidates=10,
               overshoot=0.02)
  found = np.isfinite(theirs) & correct
  assert np.isfinite(ours[found]).all(), np.flatnonzero(
      found & ~np.isfinite(ours))
  both = found & np.isfinite(ours)
  assert abs(_median(ours, both) / _median(theirs, both) - 1) <= 0.05, (
      _median(ours, both), _median(theirs, both))


@pytest.mark.slow
def test_cw_matches_foolbox():
  import foolbox as fb  # pylint: disable=g-import-not-at-top
  correct = _setup()[-1]
  settings = dict(binary_search_steps=5, steps=100, stepsize=0.01,
                  confidence=0.0, initial_const=0.01)
  theirs = _theirs(fb.attacks.L2CarliniWagnerAttack(abort_early=False,
                                                    **settings))
  ours = _ours(cw.cw_l2, **settings)
  both = np.isfinite(theirs) & np.isfinite(ours) & correct
  assert both.mean() >= 0.8
  assert abs(_median(ours, both) / _median(theirs, both) - 1) <= 0.05, (
      _median(ours, both), _median(theirs, both))
