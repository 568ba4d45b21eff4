"""EfficientNet-Lite0: the shipped weights classify real photos and cache.
(Logits against torch: tests/crosscheck/test_model_references.py.)"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxaudit.data import sources
from jaxaudit.models import load_model


@pytest.fixture(scope="module")
def lite0():
  return load_model(ml_collections.ConfigDict({"name": "efficientnet_lite0",
                                               "checkpoint": ""}))


def test_classifies_real_photos(lite0):
  """The scikit-image cat and espresso photos get an acceptable top-1 class."""
  model, params = lite0
  demo = sources.DemoSource()
  acceptable = dict(zip(demo.files, demo.acceptable_labels()))
  index = {f: i for i, f in enumerate(demo.files)}
  for name in ("chelsea.png", "coffee.png", "camera.png"):
    image = demo.load(index[name], model.preprocessing)
    logits = model.logits(params, jnp.asarray(image[None], jnp.float32) / 255)
    assert int(jnp.argmax(logits)) in acceptable[name], name


def test_converted_weights_cache_roundtrip(tmp_path, lite0):
  model, params = lite0
  config = ml_collections.ConfigDict({"name": "efficientnet_lite0",
                                      "checkpoint": "",
                                      "cache_dir": str(tmp_path)})
  _, first = load_model(config)
  cached = list(tmp_path.glob("efficientnet_lite0-*.npz"))
  assert len(cached) == 1
  _, second = load_model(config)
  for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert jax.tree.structure(second) == jax.tree.structure(params)
  del model
