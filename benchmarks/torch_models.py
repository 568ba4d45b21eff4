"""Plain-PyTorch reference architectures (no torchvision) for cross-checks and peers.

The same weights as the Flax models, loaded from the NumPy state dicts that
`jaxaudit.weights.load_state_dict` returns, so a test can compare logits and a
benchmark can time the two frameworks on identical work. PyTorch is a test and
benchmark dependency only.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from jaxaudit.models import efficientnet_lite


def load_numpy_state(module: nn.Module, state: dict[str, np.ndarray]) -> nn.Module:
  """Loads a {name: np.ndarray} state dict (strict) and sets eval mode."""
  tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
  module.load_state_dict(tensors, strict=True)
  return module.eval()


class _CifarBlock(nn.Module):

  def __init__(self, in_planes: int, planes: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.pad = planes - in_planes if (stride != 1 or in_planes != planes) else -1
    self.stride = stride

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    if self.pad >= 0:
      x = F.pad(x[:, :, ::self.stride, ::self.stride],
                (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
    return F.relu(y + x)


class CifarResNet(nn.Module):
  """akamaster/pytorch_resnet_cifar10's ResNet; takes [B, 3, 32, 32] in [0, 1]."""

  def __init__(self, depth: int = 20, num_classes: int = 10):
    super().__init__()
    n = (depth - 2) // 6
    self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(16)
    layers, in_planes = [], 16
    for stage, planes in enumerate((16, 32, 64)):
      blocks = []
      for i in range(n):
        blocks.append(_CifarBlock(in_planes, planes,
                                  2 if stage > 0 and i == 0 else 1))
        in_planes = planes
      layers.append(nn.Sequential(*blocks))
    self.layer1, self.layer2, self.layer3 = layers
    self.linear = nn.Linear(64, num_classes)
    self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
    self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

  def forward(self, x):
    x = (x - self.mean) / self.std
    x = F.relu(self.bn1(self.conv1(x)))
    x = self.layer3(self.layer2(self.layer1(x)))
    return self.linear(x.mean((2, 3)))

  def load_numpy_state(self, state: dict[str, np.ndarray]) -> "CifarResNet":
    full = dict(state, mean=self.mean.numpy(), std=self.std.numpy())
    return load_numpy_state(self, full)


class _ResNetBlock(nn.Module):

  def __init__(self, in_planes: int, planes: int, stride: int, bottleneck: bool):
    super().__init__()
    out = planes * (4 if bottleneck else 1)
    if bottleneck:
      self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(planes)
      self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
      self.bn2 = nn.BatchNorm2d(planes)
      self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
      self.bn3 = nn.BatchNorm2d(out)
    else:
      self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(planes)
      self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
      self.bn2 = nn.BatchNorm2d(planes)
    self.bottleneck = bottleneck
    self.downsample = None
    if stride != 1 or in_planes != out:
      self.downsample = nn.Sequential(nn.Conv2d(in_planes, out, 1, stride, bias=False),
                                      nn.BatchNorm2d(out))

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    if self.bottleneck:
      y = F.relu(self.bn2(self.conv2(y)))
      y = self.bn3(self.conv3(y))
    else:
      y = self.bn2(self.conv2(y))
    return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
  """torchvision's ResNet layout (state-dict compatible) on raw logits; takes
  ImageNet-normalised [B, 3, H, W]."""
  LAYOUTS = {18: (False, (2, 2, 2, 2)), 34: (False, (3, 4, 6, 3)),
             50: (True, (3, 4, 6, 3)), 101: (True, (3, 4, 23, 3)),
             152: (True, (3, 8, 36, 3))}

  def __init__(self, depth: int = 50, num_classes: int = 1000):
    super().__init__()
    bottleneck, blocks = self.LAYOUTS[depth]
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    in_planes = 64
    for stage, count in enumerate(blocks):
      layer = []
      for i in range(count):
        planes = 64 * 2**stage
        layer.append(_ResNetBlock(in_planes, planes,
                                  2 if stage > 0 and i == 0 else 1, bottleneck))
        in_planes = planes * (4 if bottleneck else 1)
      setattr(self, f"layer{stage + 1}", nn.Sequential(*layer))
    self.fc = nn.Linear(in_planes, num_classes)

  def forward(self, x):
    x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    return self.fc(x.mean((2, 3)))


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
  """TensorFlow SAME padding (asymmetric when the total is odd)."""
  h, w = x.shape[-2:]
  pad_h = max((-(-h // stride) - 1) * stride + kernel - h, 0)
  pad_w = max((-(-w // stride) - 1) * stride + kernel - w, 0)
  return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))


class _SameConv(nn.Conv2d):

  def forward(self, x):
    return super().forward(_same_pad(x, self.kernel_size[0], self.stride[0]))


class _MBConv(nn.Module):

  def __init__(self, kernel, stride, expand, in_ch, out_ch):
    super().__init__()
    mid = in_ch * expand
    if expand != 1:
      self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
      self._bn0 = nn.BatchNorm2d(mid, eps=1e-3)
    self._depthwise_conv = _SameConv(mid, mid, kernel, stride, groups=mid,
                                     bias=False)
    self._bn1 = nn.BatchNorm2d(mid, eps=1e-3)
    self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
    self._bn2 = nn.BatchNorm2d(out_ch, eps=1e-3)
    self.expand, self.residual = expand, stride == 1 and in_ch == out_ch

  def forward(self, x):
    y = x
    if self.expand != 1:
      y = F.relu6(self._bn0(self._expand_conv(y)))
    y = F.relu6(self._bn1(self._depthwise_conv(y)))
    y = self._bn2(self._project_conv(y))
    return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
  """The Lite0 with the pip package's state-dict names and TF SAME padding;
  takes [B, 3, 224, 224] pixels in [0, 1]."""

  def __init__(self):
    super().__init__()
    self._conv_stem = _SameConv(3, 32, 3, 2, bias=False)
    self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
    self._blocks = nn.ModuleList(
        [_MBConv(*spec) for spec in efficientnet_lite.block_specs()])
    self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
    self._bn1 = nn.BatchNorm2d(1280, eps=1e-3)
    self._fc = nn.Linear(1280, 1000)

  def forward(self, x):
    x = (x * 255.0 - 127.0) / 128.0
    x = F.relu6(self._bn0(self._conv_stem(x)))
    for block in self._blocks:
      x = block(x)
    x = F.relu6(self._bn1(self._conv_head(x)))
    return self._fc(x.mean((2, 3)))
