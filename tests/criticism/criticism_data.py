"""Real features for the criticism tests (a fixture): the shipped digits
model's penultimate layer on scikit-learn's test digits, all offline."""

import numpy as np
import pytest

from digits_model import model_and_params
from jaxaudit.data import digits


@pytest.fixture(scope="session")
def digit_features():
  """Penultimate `digits_cnn` features float32 [500, 64] and labels [500] of
  the 500 test digits."""
  model, params = model_and_params()
  images, labels = digits.digit_images("test")
  features = np.asarray(model.features(params, images.astype(np.float32)
                                       / 255.0))
  return features, np.asarray(labels)
