"""Feature masks, baselines and the border band."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudit.errors import ParameterError
from jaxaudit.models import MODELS
from jaxaudit.models import cifar_resnet
from jaxaudit.sis import masks


def _model(name):
  return MODELS.get(name).make_classifier(name)


def test_mean_baseline_normalises_to_zero():
  base = masks.baseline_pixel(_model("cifar_resnet20"), "mean")
  np.testing.assert_allclose(base, cifar_resnet.MEAN)
  lite = masks.baseline_pixel(_model("efficientnet_lite0"), "mean")
  np.testing.assert_allclose(lite * 255.0 - 127.0, 0.0, atol=1e-4)
  with pytest.raises(ParameterError, match="baseline"):
    masks.baseline_pixel(_model("cifar_resnet20"), "blur")


def test_block_size_auto_and_checked():
  assert masks.resolve_block_size(0, 32) == 1
  assert masks.resolve_block_size(0, 224) == 7
  # EfficientNet-Lite1 and Lite2 inputs: 240 // 32 = 7 and 260 // 32 = 8 do
  # not divide them; the auto size is the largest divisor below.
  assert masks.resolve_block_size(0, 240) == 6
  assert masks.resolve_block_size(0, 260) == 5
  assert masks.default_block_size(260, 16) == 13
  for size in range(1, 400):
    block = masks.default_block_size(size, 32)
    assert size % block == 0 and block <= max(1, size // 32)
  with pytest.raises(ParameterError, match="block_size"):
    masks.resolve_block_size(5, 32)


def test_apply_mask_keeps_blocks_and_fills_the_rest():
  images = jnp.ones((1, 4, 4, 3))
  mask = jnp.asarray([[1.0, 0.0, 0.0, 0.0]])
  out = np.asarray(masks.apply_mask(images, mask, jnp.asarray([0.1, 0.2, 0.3]), 2))
  np.testing.assert_allclose(out[0, :2, :2], 1.0)
  np.testing.assert_allclose(out[0, 2:, :], np.broadcast_to([0.1, 0.2, 0.3], (2, 4, 3)))
  np.testing.assert_allclose(out[0, :2, 2:], np.broadcast_to([0.1, 0.2, 0.3], (2, 2, 3)))


def test_border_band_counts_pixels_per_feature():
  band = masks.border_band(32, 1, 0.1)  # 3-pixel band on 32x32.
  assert band.sum() == 32 * 32 - 26 * 26
  blocks = masks.border_band(4, 8, 0.1)  # 3-pixel band on 32x32 in 8x8 blocks.
  assert blocks.sum() == band.sum()
  assert blocks.reshape(4, 4)[1, 1] == 0 and blocks.reshape(4, 4)[0, 0] == 64 - 25
  with pytest.raises(ParameterError, match="border_fraction"):
    masks.border_band(32, 1, 0.6)


def test_random_ranks_are_permutations_per_key():
  keys = jax.random.split(jax.random.key(0), 3)
  ranks = np.asarray(masks.random_ranks(keys, 50))
  np.testing.assert_array_equal(np.sort(ranks, 1), np.tile(np.arange(50), (3, 1)))
  assert not np.array_equal(ranks[0], ranks[1])
