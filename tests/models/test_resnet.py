"""ImageNet ResNets import torchvision-format state dicts: logits equal a plain
torch reference with the same (random) weights."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxaudit.errors import DataError
from jaxaudit.models import load_model

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("depth", [18, 50])
def test_logits_match_torch_reference(tmp_path, depth):
  from benchmarks import torch_models
  torch.manual_seed(depth)
  reference = torch_models.ResNet(depth)
  for module in reference.modules():
    if isinstance(module, torch.nn.BatchNorm2d):
      torch.nn.init.uniform_(module.weight, 0.5, 1.5)
      torch.nn.init.uniform_(module.bias, -0.2, 0.2)
      module.running_mean.uniform_(-0.2, 0.2)
      module.running_var.uniform_(0.5, 1.5)
  reference.eval()
  path = tmp_path / f"resnet{depth}.pth"
  torch.save(reference.state_dict(), path)
  model, params = load_model(ml_collections.ConfigDict(
      {"name": f"resnet{depth}", "checkpoint": str(path)}))
  x = np.random.RandomState(1).rand(2, 96, 96, 3).astype(np.float32)
  ours = np.asarray(model.logits(params, jnp.asarray(x)))
  mean = np.array([0.485, 0.456, 0.406], np.float32)
  std = np.array([0.229, 0.224, 0.225], np.float32)
  with torch.no_grad():
    theirs = reference(torch.from_numpy(((x - mean) / std).transpose(0, 3, 1, 2)))
  np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-4, rtol=1e-4)


def test_wrong_architecture_is_reported(tmp_path):
  from benchmarks import torch_models
  path = tmp_path / "r18.pth"
  torch.save(torch_models.ResNet(18).state_dict(), path)
  with pytest.raises(DataError, match="r18.pth"):
    load_model(ml_collections.ConfigDict({"name": "resnet34",
                                          "checkpoint": str(path)}))
