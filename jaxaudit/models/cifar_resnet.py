"""CIFAR-10 ResNet-20/56 (He et al. 2016, the original CIFAR design).

Three stages of 16/32/64 channels with n basic blocks each (n = 3 for ResNet-20,
9 for ResNet-56); the shortcut is the identity, subsampled by 2 and zero-padded in
channels where the shape changes ("option A", no parameters). Weights follow the
names of akamaster/pytorch_resnet_cifar10; the classifier normalises inputs with
the ImageNet mean/std, as those weights were trained.
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
DEPTH_BLOCKS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}
_PAD1 = ((1, 1), (1, 1))
_BatchNorm = functools.partial(nn.BatchNorm, epsilon=1e-5, momentum=0.9)


class BasicBlock(nn.Module):
  """Two 3x3 convs with an option-A identity shortcut."""
  channels: int
  stride: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = nn.Conv(self.channels, (3, 3), (self.stride, self.stride), padding=_PAD1,
                use_bias=False, name="conv1")(x)
    y = nn.relu(_BatchNorm(use_running_average=not train, name="bn1")(y))
    y = nn.Conv(self.channels, (3, 3), padding=_PAD1, use_bias=False,
                name="conv2")(y)
    y = _BatchNorm(use_running_average=not train, name="bn2")(y)
    if self.stride != 1 or x.shape[-1] != self.channels:
      x = x[:, ::self.stride, ::self.stride, :]
      extra = self.channels - x.shape[-1]
      x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
    return nn.relu(y + x)


class CifarResNet(nn.Module):
  """[B, 32, 32, 3] normalised pixels -> (logits [B, 10], features [B, 64])."""
  depth: int = 20
  num_classes: int = 10

  @nn.compact
  def __call__(self, images: jax.Array,
               train: bool = False) -> tuple[jax.Array, jax.Array]:
    x = nn.Conv(16, (3, 3), padding=_PAD1, use_bias=False,
                name="conv1")(images)
    x = nn.relu(_BatchNorm(use_running_average=not train, name="bn1")(x))
    for stage, channels in enumerate((16, 32, 64)):
      for i in range(DEPTH_BLOCKS[self.depth]):
        stride = 2 if stage > 0 and i == 0 else 1
        x = BasicBlock(channels, stride, name=f"layer{stage + 1}_{i}")(x, train)
    features = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="linear")(features), features


def convert_torch(state: convert.StateDict, name: str) -> dict:
  """akamaster/pytorch_resnet_cifar10 names -> Flax variables."""
  depth = depth_of(name)
  params, stats = {"conv1": convert.conv(state, "conv1")}, {}
  convert.add_bn(params, stats, "bn1", state, "bn1")
  for stage in range(3):
    for i in range(DEPTH_BLOCKS[depth]):
      t, p, s = f"layer{stage + 1}.{i}", {}, {}
      p["conv1"] = convert.conv(state, f"{t}.conv1")
      convert.add_bn(p, s, "bn1", state, f"{t}.bn1")
      p["conv2"] = convert.conv(state, f"{t}.conv2")
      convert.add_bn(p, s, "bn2", state, f"{t}.bn2")
      params[f"layer{stage + 1}_{i}"], stats[f"layer{stage + 1}_{i}"] = p, s
  params["linear"] = convert.dense(state, "linear")
  state.check_all_used()
  return {"params": params, "batch_stats": stats}


def depth_of(name: str) -> int:
  return int(name.removeprefix("cifar_resnet"))


def make_classifier(name: str) -> Classifier:
  return Classifier.from_linen(
      CifarResNet(depth=depth_of(name)), input_size=32,
      class_names=classes.CIFAR10_NAMES, normalization=Normalization(MEAN, STD),
      apply_kwargs={"train": False}, name=name)


ENTRY = ModelEntry(make_classifier, convert_torch)
