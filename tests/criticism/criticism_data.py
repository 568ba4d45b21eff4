"""Real CIFAR-10 ResNet-20 features for the criticism tests (a fixture)."""

import os

import ml_collections
import numpy as np
import pytest

from conftest import CIFAR_DIR, require_shared
from jaxaudit.models import load_model


@pytest.fixture(scope="session")
def cifar_features():
  """Penultimate ResNet-20 features [300, 64] and labels of real test images."""
  data = np.load(require_shared(os.path.join(CIFAR_DIR, "test_jpeg.npz")))
  model, params = load_model(ml_collections.ConfigDict(dict(
      name="cifar_resnet20", checkpoint=require_shared(
          os.path.join(CIFAR_DIR, "resnet20.th")))))
  images = data["images"][:300].astype(np.float32) / 255.0
  features = np.asarray(model.features(params, images))
  return features, np.asarray(data["labels"][:300])
