"""APGD-CE and APGD-T (L-inf and L2) on the pretrained CIFAR ResNet-20 and real
CIFAR-10; the slow test cross-checks robust accuracy against torchattacks."""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attack_fixtures import check_in_ball, cifar
from conftest import CIFAR_DIR, require_shared
from jaxaudit import compile_options, sharding
from jaxaudit.attacks import apgd, pgd
from jaxaudit.errors import ParameterError
from jaxaudit.weights import load_state_dict

N = 16
STEPS = 10
LINF = (0.25 / 255, 0.5 / 255, 2 / 255)
L2 = (0.02, 0.05, 0.25)


@functools.cache
def _run(attack, norm: str, epsilons: tuple[float, ...], reverse=False,
         **hyperparameters):
  """`attack` (jitted) on the first N CIFAR images -> (AttackResult of NumPy
  arrays, images, labels), examples in reverse order if asked."""
  model, params, images, labels, keys = cifar()
  order = np.arange(N)[::-1] if reverse else np.arange(N)
  images, labels, keys = images[order], labels[order], keys[order]
  fn = compile_options.jit(functools.partial(
      attack, model.logits_fn(params), norm=norm, **hyperparameters))
  result = fn(images, labels, jnp.asarray(epsilons, jnp.float32), keys)
  return jax.tree.map(np.asarray, result), images, np.asarray(labels)


def _robust(result, labels):
  return (result.adv_class == labels[None]).mean(axis=1)


@pytest.mark.parametrize("norm,epsilons", [("linf", LINF), ("l2", L2)])
def test_apgd_ce_in_ball_flips_labels_and_beats_pgd(norm, epsilons):
  result, images, labels = _run(apgd.apgd_ce, norm, epsilons, steps=STEPS)
  check_in_ball(result, images, epsilons, norm)
  np.testing.assert_array_equal(result.success,
                                result.adv_class != labels[None])
  robust = _robust(result, labels)
  assert (np.diff(robust) <= 0).all() and robust[-1] == 0.0, robust
  baseline = _robust(_run(pgd.pgd, norm, epsilons, steps=STEPS)[0], labels)
  assert (robust <= baseline).all(), (robust, baseline)


@pytest.mark.parametrize("norm,epsilons", [("linf", LINF), ("l2", L2)])
def test_apgd_t_in_ball_and_flips_labels(norm, epsilons):
  result, images, labels = _run(apgd.apgd_t, norm, epsilons, steps=STEPS,
                                num_target_classes=3)
  check_in_ball(result, images, epsilons, norm)
  robust = _robust(result, labels)
  assert (np.diff(robust) <= 0).all() and robust[-1] == 0.0, robust
  single = _robust(_run(apgd.apgd_t, norm, epsilons, steps=STEPS,
                        num_target_classes=1)[0], labels)
  assert (robust <= single).all(), (robust, single)


def test_results_do_not_depend_on_batch_order():
  settings = dict(steps=4, num_target_classes=2, restarts=2)
  forward = _run(apgd.apgd_t, "l2", L2[:2], **settings)[0]
  backward = _run(apgd.apgd_t, "l2", L2[:2], reverse=True, **settings)[0]
  order = np.arange(N)[::-1]
  np.testing.assert_array_equal(backward.success, forward.success[:, order])
  np.testing.assert_allclose(backward.clipped, forward.clipped[:, order],
                             atol=1e-5)


def test_checkpoints_follow_the_paper():
  assert list(np.flatnonzero(apgd.checkpoints(100))) == [22, 41, 57, 70, 80,
                                                         87, 93, 99]
  assert list(np.flatnonzero(apgd.checkpoints(10))) == [3, 5, 6, 7, 8, 9, 10]
  assert list(np.flatnonzero(apgd.checkpoints(1))) == [1]


def test_dlr_losses_match_their_formulas():
  logits = jnp.asarray([[1.0, 4.0, 2.0, 0.5, 3.0]])
  label, target = jnp.asarray([2]), jnp.asarray([4])
  # Sorted: 4, 3, 2, 1, 0.5; the best other class than 2 has logit 4.
  dlr = apgd._loss(logits, label, None, "dlr")  # pylint: disable=protected-access
  np.testing.assert_allclose(dlr, [-(2.0 - 4.0) / (4.0 - 2.0)], rtol=1e-6)
  targeted = apgd._loss(logits, label, target, "dlr_targeted")  # pylint: disable=protected-access
  np.testing.assert_allclose(targeted, [-(2.0 - 3.0) / (4.0 - 1.5)], rtol=1e-6)


@pytest.mark.parametrize("settings,parameter", [
    (dict(norm="l1"), "norm"), (dict(loss="margin"), "loss"),
    (dict(steps=0), "steps"), (dict(restarts=0), "restarts"),
    (dict(rho=0.0), "rho"), (dict(rho=1.5), "rho"),
    (dict(loss="dlr_targeted", num_target_classes=0), "num_target_classes"),
    (dict(loss="dlr_targeted"), "loss"),  # needs 4 classes, the model has 3
])
def test_bad_parameters_raise(settings, parameter):
  images = jnp.zeros((2, 4, 4, 3))
  logits_fn = lambda x: jnp.mean(x, axis=(1, 2))  # 3 classes
  with pytest.raises(ParameterError) as raised:
    apgd.apgd(logits_fn, images, jnp.zeros((2,), jnp.int32),
              jnp.asarray([0.1]), jax.random.split(jax.random.key(0), 2),
              **settings)
  assert raised.value.parameter == parameter


@pytest.mark.slow
@pytest.mark.parametrize("norm,epsilons", [("linf", (1 / 255, 2 / 255)),
                                           ("l2", (0.1, 0.25))])
@pytest.mark.parametrize("loss", ["ce"])
def test_robust_accuracy_matches_torchattacks(norm, epsilons, loss):
  torch = pytest.importorskip("torch")
  torchattacks = pytest.importorskip("torchattacks")
  from benchmarks import torch_models  # pylint: disable=g-import-not-at-top
  model, params = cifar()[:2]
  with np.load(require_shared(os.path.join(CIFAR_DIR, "test_jpeg.npz"))) as npz:
    images = npz["images"][:200].astype(np.float32) / 255.0
    labels = npz["labels"][:200].astype(np.int64)
  net = torch_models.CifarResNet(20).load_numpy_state(
      load_state_dict(os.path.join(CIFAR_DIR, "resnet20.th")))
  keys = sharding.example_keys(jax.random.key(0), jnp.arange(len(labels)))
  ours = compile_options.jit(functools.partial(
      apgd.apgd, model.logits_fn(params), norm=norm, steps=100, loss=loss))(
          jnp.asarray(images), jnp.asarray(labels, jnp.int32),
          jnp.asarray(epsilons, jnp.float32), keys)
  ours_acc = (np.asarray(ours.adv_class) == labels[None]).mean(axis=1)
  x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  y = torch.from_numpy(labels)
  torch_norm = {"linf": "Linf", "l2": "L2"}[norm]
  for eps, acc in zip(epsilons, ours_acc):
    if loss == "ce":
      attack = torchattacks.APGD(net, norm=torch_norm, eps=eps, steps=100,
                                 n_restarts=1, loss="ce")
    else:
      attack = torchattacks.APGDT(net, norm=torch_norm, eps=eps, steps=100,
                                  n_restarts=1, n_classes=10)
    with torch.no_grad():
      theirs = float((net(attack(x, y)).argmax(-1) == y).float().mean())
    assert abs(acc - theirs) <= 0.01 + 1e-9, (norm, eps, loss, acc, theirs)
