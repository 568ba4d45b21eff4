"""Stand-ins a sceptical reviewer would try, as a pytest plugin.

`python -m pytest -p stubs TESTS` swaps in, before any test runs:
- an identity attack for every attack (success False, `adv_class` equal to the
  labels, norm 0, no minimal norm), including AutoAttack's sub-attacks;
- constant attributions (all ones) for every attribution method, integrated
  gradients reporting zero completeness error;
- random SIS ranks for batched gradient backward selection (the confidence
  curve honestly measured along those ranks).
`tests/test_stub_swap.py` runs the tests that guard those methods under the
stubs and requires every one of them to fail: a test a stub passes guards
nothing.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit.attacks import (apgd, autoattack, common, cw, deepfool, fab,
                              fgsm, fmn, pgd, square)
from jaxaudit.explain import integrated_gradients, saliency, smoothgrad
from jaxaudit.sis import bgsis, masks

ATTACK_FUNCTIONS = {
    fgsm: ("fgsm",), pgd: ("pgd", "pgd_linf", "pgd_l2"),
    deepfool: ("deepfool",), cw: ("cw_l2",),
    fmn: ("fmn", "fmn_linf", "fmn_l2"), apgd: ("apgd", "apgd_ce", "apgd_t"),
    fab: ("fab", "fab_t"), square: ("square",), autoattack: ("autoattack",),
}


def identity_attack(logits_fn, images, labels, epsilons, keys, **unused):
  """Returns the images themselves at every epsilon, claiming no success."""
  del logits_fn, keys, unused
  shape = (epsilons.shape[0],) + images.shape
  batch = (epsilons.shape[0], images.shape[0])
  return common.AttackResult(
      raw=jnp.broadcast_to(images, shape),
      clipped=jnp.broadcast_to(images, shape),
      success=jnp.zeros(batch, bool), norm=jnp.zeros(batch, jnp.float32),
      adv_class=jnp.broadcast_to(labels.astype(jnp.int32), batch),
      min_norm=jnp.full(images.shape[:1], jnp.inf, jnp.float32))


def constant_map(logits_fn, images, targets, *unused, **unused_kw):
  del logits_fn, targets, unused, unused_kw
  return jnp.ones_like(images)


def constant_ig(logits_fn, images, baselines, targets, **unused):
  del logits_fn, baselines, unused
  zeros = jnp.zeros(targets.shape, jnp.float32)
  return integrated_gradients.IGOutput(jnp.ones_like(images), zeros, zeros)


def random_selection(log_prob_fn, images, targets, baseline, *, block_size,
                     removals):
  """Ranks in a random order per example; the curve measured along them."""
  num_features = masks.grid_side(images.shape[1], block_size) ** 2
  keys = jax.random.split(jax.random.key(12345), images.shape[0])
  ranks = masks.random_ranks(keys, num_features)
  kept = jnp.asarray(bgsis.kept_counts(np.asarray(removals, np.int32)))

  def confidence(count):
    kept_images = masks.apply_mask(images, masks.top_ranked(ranks, count),
                                   baseline, block_size)
    log_probs = log_prob_fn(kept_images)
    return jnp.exp(jnp.take_along_axis(log_probs, targets[:, None], 1)[:, 0])

  return bgsis.BackwardSelection(ranks=ranks, kept=kept,
                                 curve=jax.lax.map(confidence, kept).T)


def pytest_configure(config):
  del config
  for module, names in ATTACK_FUNCTIONS.items():
    for name in names:
      setattr(module, name, identity_attack)
  saliency.vanilla_gradient = constant_map
  saliency.gradient_x_input = constant_map
  smoothgrad.smoothgrad = constant_map
  integrated_gradients.integrated_gradients = constant_ig
  bgsis.backward_selection = random_selection
