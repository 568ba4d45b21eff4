"""Integrated gradients agree with Captum's on identical weights and real
CIFAR-10 images (Captum's attributions recorded in tests/references/)."""

import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import peer_references as refs
from conftest import require_shared
from jaxaudit.explain import integrated_gradients as ig
from reference_fixtures import SOURCES, check_hashes, cifar_model, reference


@SOURCES
@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_middle"])
def test_ig_matches_captum_on_real_cifar_images(source, rule):
  record = reference("captum_ig", source)
  assert record["settings"]["steps"] == 16
  model, params = cifar_model()
  require_shared(refs.CIFAR_IMAGES)
  images, _ = refs.cifar_inputs(3)
  logits_fn = model.logits_fn(params)
  targets = np.argmax(np.asarray(logits_fn(jnp.asarray(images))), -1)
  assert targets.tolist() == record["results"]["targets"]
  check_hashes(record, refs.sha256_inputs(images, targets),
               refs.sha256_file(refs.CIFAR_WEIGHTS))
  ours = ig.integrated_gradients(
      logits_fn, jnp.asarray(images), jnp.zeros_like(jnp.asarray(images)),
      jnp.asarray(targets), steps=16, chunk=8, rule=rule)
  ours = np.asarray(ours.attributions)
  theirs = refs.as_array(record["results"][rule]).reshape(ours.shape)
  relative = np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)
  assert relative < 1e-3
  np.testing.assert_allclose(ours, theirs, atol=1e-3 * np.abs(theirs).max())
