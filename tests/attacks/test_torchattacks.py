"""Cross-check: PGD-L-inf agrees with torchattacks on identical weights/images."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attack_fixtures import cifar
from conftest import CIFAR_DIR
from jaxaudit.attacks import pgd
from jaxaudit.weights import load_state_dict


@pytest.mark.slow
def test_pgd_linf_matches_torchattacks():
  torch = pytest.importorskip("torch")
  torchattacks = pytest.importorskip("torchattacks")
  from benchmarks import torch_models  # pylint: disable=g-import-not-at-top
  model, params, images, labels, keys = cifar()
  net = torch_models.CifarResNet(20).load_numpy_state(
      load_state_dict(os.path.join(CIFAR_DIR, "resnet20.th")))
  x = torch.from_numpy(np.asarray(images).transpose(0, 3, 1, 2).copy())
  y = torch.from_numpy(np.asarray(labels).astype(np.int64))
  for eps in (0.5 / 255, 1 / 255):
    theirs = torchattacks.PGD(net, eps=eps, alpha=eps / 4, steps=10,
                              random_start=False)(x, y)
    with torch.no_grad():
      theirs_acc = float((net(theirs).argmax(-1) == y).float().mean())
    ours = jax.jit(functools.partial(
        pgd.pgd_linf, model.logits_fn(params), steps=10, rel_stepsize=0.25,
        random_start=False))(images, labels, jnp.asarray([eps]), keys)
    ours_acc = float((np.asarray(ours.adv_class[0])
                      == np.asarray(labels)).mean())
    assert abs(ours_acc - theirs_acc) <= 0.02 + 1e-9, (eps, ours_acc,
                                                       theirs_acc)
