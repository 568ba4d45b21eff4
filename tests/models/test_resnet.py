"""ImageNet ResNets from torchvision-format state dicts: a checkpoint of another
depth is reported with its path. (Logits against torch:
tests/crosscheck/test_model_references.py.)"""

import ml_collections
import numpy as np
import pytest

from benchmarks import peer_references
from jaxaudit.errors import DataError
from jaxaudit.models import load_model


def test_wrong_architecture_is_reported(tmp_path):
  path = tmp_path / "r18.npz"
  np.savez(path, **peer_references.resnet_random_state(18, seed=0))
  with pytest.raises(DataError, match="r18.npz"):
    load_model(ml_collections.ConfigDict({"name": "resnet34",
                                          "checkpoint": str(path)}))
