"""jaxaudit's attacks against torchattacks and Foolbox 3 on identical weights and
CIFAR-10 test images: PGD-L-inf and APGD-CE robust accuracy, DeepFool and C&W
minimal L2 perturbations (the peers' side recorded in tests/references/;
standard AutoAttack in test_autoattack_torchattacks.py, a file of its own so
the test workers share the slow cross-checks)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import peer_references as refs
from jaxaudit import compile_options, sharding
from jaxaudit.attacks import apgd, cw, deepfool, pgd
from reference_fixtures import (APGD_EPSILONS, SOURCES, cifar_inputs,
                                cifar_model, reference, robust_accuracies)

PGD_EPSILONS = (0.5 / 255, 1 / 255)
FOOLBOX_IMAGES = 100


@SOURCES
def test_pgd_linf_matches_torchattacks(source):
  record = reference("torchattacks_pgd", source)
  images, labels = cifar_inputs(record, 32)
  model, params = cifar_model()
  keys = sharding.example_keys(jax.random.key(0), jnp.arange(32))
  attack = jax.jit(functools.partial(
      pgd.pgd_linf, model.logits_fn(params), steps=10, rel_stepsize=0.25,
      random_start=False))
  for eps, theirs in zip(PGD_EPSILONS,
                         robust_accuracies(record, PGD_EPSILONS)):
    ours = attack(jnp.asarray(images), jnp.asarray(labels, jnp.int32),
                  jnp.asarray([eps]), keys)
    ours = float((np.asarray(ours.adv_class[0]) == labels).mean())
    assert abs(ours - theirs) <= 0.02 + 1e-9, (eps, ours, theirs)


@pytest.mark.slow
@SOURCES
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_apgd_ce_robust_accuracy_matches_torchattacks(source, norm):
  record = reference(f"torchattacks_apgd_{norm}", source)
  images, labels = cifar_inputs(record, 200)
  model, params = cifar_model()
  keys = sharding.example_keys(jax.random.key(0), jnp.arange(len(labels)))
  ours = compile_options.jit(functools.partial(
      apgd.apgd, model.logits_fn(params), norm=norm, steps=100, loss="ce"))(
          jnp.asarray(images), jnp.asarray(labels, jnp.int32),
          jnp.asarray(APGD_EPSILONS[norm], jnp.float32), keys)
  ours = (np.asarray(ours.adv_class) == labels[None]).mean(axis=1)
  theirs = robust_accuracies(record, APGD_EPSILONS[norm])
  for eps, mine, their in zip(APGD_EPSILONS[norm], ours, theirs):
    assert abs(mine - their) <= 0.01 + 1e-9, (norm, eps, mine, their)


def _minimal_norms(record: dict, attack, **settings):
  """(ours, theirs, clean-correct): minimal L2 norms [N] (inf where the attack
  failed) of jaxaudit's `attack` and the recorded Foolbox attack."""
  images, labels = cifar_inputs(record, FOOLBOX_IMAGES)
  model, params = cifar_model()
  logits_fn = model.logits_fn(params)
  correct = np.asarray(logits_fn(jnp.asarray(images))).argmax(-1) == labels
  result = jax.jit(functools.partial(attack, logits_fn, **settings))(
      jnp.asarray(images), jnp.asarray(labels, jnp.int32),
      jnp.asarray([np.inf], jnp.float32),
      jax.random.split(jax.random.key(0), FOOLBOX_IMAGES))
  theirs = refs.as_array(record["results"]["min_norm"])
  return np.asarray(result.min_norm), theirs, correct


def _median(norms, rows):
  return float(np.median(norms[rows]))


@pytest.mark.slow
@SOURCES
def test_deepfool_matches_foolbox(source):
  record = reference("foolbox_deepfool", source)
  assert record["settings"] == dict(
      steps=50, candidates=10, overshoot=0.02, loss="logits",
      attack="L2DeepFoolAttack", num_images=FOOLBOX_IMAGES)
  ours, theirs, correct = _minimal_norms(
      record, deepfool.deepfool, norm="l2", steps=50, candidates=10,
      overshoot=0.02)
  found = np.isfinite(theirs) & correct
  assert np.isfinite(ours[found]).all(), np.flatnonzero(
      found & ~np.isfinite(ours))
  both = found & np.isfinite(ours)
  assert abs(_median(ours, both) / _median(theirs, both) - 1) <= 0.05, (
      _median(ours, both), _median(theirs, both))


@pytest.mark.slow
@SOURCES
def test_cw_matches_foolbox(source):
  record = reference("foolbox_cw", source)
  settings = dict(binary_search_steps=5, steps=100, stepsize=0.01,
                  confidence=0.0, initial_const=0.01)
  assert record["settings"] == dict(
      settings, abort_early=False, attack="L2CarliniWagnerAttack",
      num_images=FOOLBOX_IMAGES)
  ours, theirs, correct = _minimal_norms(record, cw.cw_l2, **settings)
  both = np.isfinite(theirs) & np.isfinite(ours) & correct
  assert both.mean() >= 0.8
  assert abs(_median(ours, both) / _median(theirs, both) - 1) <= 0.05, (
      _median(ours, both), _median(theirs, both))


def test_a_changed_image_or_checkpoint_fails_the_hash_check(monkeypatch):
  """A reference recorded on other inputs fails, naming the re-record command."""
  record = reference("torchattacks_pgd", "recorded")
  images, labels = cifar_inputs(record, 32)

  def altered(count):
    changed = images.copy()
    changed[5, 7, 7, 0] = np.float32(0.5) + changed[5, 7, 7, 0] / 2
    return changed[:count], labels[:count]

  with monkeypatch.context() as patch:
    patch.setattr(refs, "cifar_inputs", altered)
    with pytest.raises(pytest.fail.Exception, match="inputs with sha256"):
      cifar_inputs(record, 32)
  monkeypatch.setitem(record, "weights_sha256", "0" * 64)
  with pytest.raises(pytest.fail.Exception,
                     match="weights with sha256.*--only=torchattacks_pgd"):
    cifar_inputs(record, 32)
