"""ImageNet ResNet-18/34/50/101/152 (He et al. 2016, torchvision's v1.5 layout).

Imports a user's torchvision-format state dict (`conv1`, `bn1`, `layer1.0.conv1`,
`layer1.0.downsample.0`, `fc`, ...). Padding is symmetric as in torchvision, and
the classifier normalises inputs with the ImageNet mean/std.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaudit import classes
from jaxaudit.models import convert
from jaxaudit.models.classifier import Classifier, Normalization
from jaxaudit.models.registry import ModelEntry

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# depth -> (bottleneck?, blocks per stage)
LAYOUTS = {18: (False, (2, 2, 2, 2)), 34: (False, (3, 4, 6, 3)),
           50: (True, (3, 4, 6, 3)), 101: (True, (3, 4, 23, 3)),
           152: (True, (3, 8, 36, 3))}
_BatchNorm = functools.partial(nn.BatchNorm, epsilon=1e-5, momentum=0.9)


def _conv(features: int, kernel: int, stride: int, name: str) -> nn.Conv:
  pad = kernel // 2
  return nn.Conv(features, (kernel, kernel), (stride, stride),
                 padding=((pad, pad), (pad, pad)), use_bias=False, name=name)


class Block(nn.Module):
  """Basic (two 3x3) or bottleneck (1x1, 3x3 strided, 1x1 x4) residual block."""
  channels: int
  stride: int
  bottleneck: bool

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    bn = functools.partial(_BatchNorm, use_running_average=not train)
    if self.bottleneck:
      out_channels = self.channels * 4
      y = nn.relu(bn(name="bn1")(_conv(self.channels, 1, 1, "conv1")(x)))
      y = nn.relu(bn(name="bn2")(_conv(self.channels, 3, self.stride, "conv2")(y)))
      y = bn(name="bn3")(_conv(out_channels, 1, 1, "conv3")(y))
    else:
      out_channels = self.channels
      y = nn.relu(bn(name="bn1")(_conv(self.channels, 3, self.stride, "conv1")(x)))
      y = bn(name="bn2")(_conv(self.channels, 3, 1, "conv2")(y))
    if self.stride != 1 or x.shape[-1] != out_channels:
      x = bn(name="downsample_bn")(
          _conv(out_channels, 1, self.stride, "downsample_conv")(x))
    return nn.relu(y + x)


class ResNet(nn.Module):
  """[B, 224, 224, 3] normalised pixels -> (logits [B, 1000], features [B, D])."""
  depth: int = 50
  num_classes: int = 1000

  @nn.compact
  def __call__(self, images: jax.Array,
               train: bool = False) -> tuple[jax.Array, jax.Array]:
    bottleneck, blocks = LAYOUTS[self.depth]
    x = _conv(64, 7, 2, "conv1")(images)
    x = nn.relu(_BatchNorm(use_running_average=not train, name="bn1")(x))
    x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    for stage, count in enumerate(blocks):
      for i in range(count):
        stride = 2 if stage > 0 and i == 0 else 1
        x = Block(64 * 2**stage, stride, bottleneck,
                  name=f"layer{stage + 1}_{i}")(x, train)
    features = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="fc")(features), features


def convert_torch(state: convert.StateDict, name: str) -> dict:
  """torchvision ResNet state dict -> Flax variables."""
  depth = depth_of(name)
  bottleneck, blocks = LAYOUTS[depth]
  params, stats = {"conv1": convert.conv(state, "conv1")}, {}
  convert.add_bn(params, stats, "bn1", state, "bn1")
  for stage, count in enumerate(blocks):
    for i in range(count):
      t, p, s = f"layer{stage + 1}.{i}", {}, {}
      for j in range(1, 4 if bottleneck else 3):
        p[f"conv{j}"] = convert.conv(state, f"{t}.conv{j}")
        convert.add_bn(p, s, f"bn{j}", state, f"{t}.bn{j}")
      if f"{t}.downsample.0.weight" in state._state:  # pylint: disable=protected-access
        p["downsample_conv"] = convert.conv(state, f"{t}.downsample.0")
        convert.add_bn(p, s, "downsample_bn", state, f"{t}.downsample.1")
      params[f"layer{stage + 1}_{i}"], stats[f"layer{stage + 1}_{i}"] = p, s
  params["fc"] = convert.dense(state, "fc")
  state.check_all_used()
  return {"params": params, "batch_stats": stats}


def depth_of(name: str) -> int:
  return int(name.removeprefix("resnet"))


def make_classifier(name: str) -> Classifier:
  return Classifier.from_linen(
      ResNet(depth=depth_of(name)), input_size=224, resize_size=256,
      class_names=classes.class_names(classes.IMAGENET1K),
      normalization=Normalization(MEAN, STD), apply_kwargs={"train": False},
      name=name)


ENTRY = ModelEntry(make_classifier, convert_torch)
