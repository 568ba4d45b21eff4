"""Flax models equal plain-torch references (`benchmarks/torch_models.py`) on
identical weights: the CIFAR ResNet-20, ImageNet ResNet-18/50 from
torchvision-format state dicts, EfficientNet-Lite0 (the torch logits recorded
in tests/references/)."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from benchmarks import peer_references as refs
from conftest import require_shared
from jaxaudit.models import efficientnet_lite, load_model
from reference_fixtures import SOURCES, check_hashes, cifar_model, reference


def _assert_logits_match(ours, record: dict) -> None:
  theirs = refs.as_array(record["results"]["logits"])
  np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-4, rtol=1e-4)


@SOURCES
def test_cifar_resnet20_matches_plain_torch_port(source):
  record = reference("torch_cifar_resnet20", source)
  model, params = cifar_model()
  x = np.random.RandomState(0).rand(8, 32, 32, 3).astype(np.float32)
  check_hashes(record, refs.sha256_inputs(x),
               refs.sha256_file(require_shared(refs.CIFAR_WEIGHTS)))
  _assert_logits_match(model.logits(params, jnp.asarray(x)), record)


@SOURCES
@pytest.mark.parametrize("depth", [18, 50])
def test_resnet_from_torchvision_state_dict_matches_torch(tmp_path, source,
                                                          depth):
  """Random weights with torchvision's names, in an .npz, give torch's logits."""
  record = reference(f"torch_resnet{depth}", source)
  state = refs.resnet_random_state(depth, seed=depth)
  path = tmp_path / f"resnet{depth}.npz"
  np.savez(path, **state)
  model, params = load_model(ml_collections.ConfigDict(
      {"name": f"resnet{depth}", "checkpoint": str(path)}))
  x = np.random.RandomState(1).rand(2, 96, 96, 3).astype(np.float32)
  check_hashes(record, refs.sha256_inputs(x), refs.sha256_state(state))
  _assert_logits_match(model.logits(params, jnp.asarray(x)), record)


@SOURCES
def test_efficientnet_lite0_matches_plain_torch_port(source):
  record = reference("torch_efficientnet_lite0", source)
  model, params = load_model(ml_collections.ConfigDict(
      {"name": "efficientnet_lite0", "checkpoint": ""}))
  x = np.random.RandomState(0).rand(2, 224, 224, 3).astype(np.float32)
  check_hashes(record, refs.sha256_inputs(x),
               refs.sha256_file(efficientnet_lite.default_checkpoint()))
  _assert_logits_match(model.logits(params, jnp.asarray(x)), record)
