"""The classifier interface every stage uses: pure functions of (params, images).

Images enter every model as float32 `[B, H, W, 3]` pixels in [0, 1]; each model
normalises inside its own function, so an attack's epsilon or an explanation's
baseline means the same thing for every model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax

Params = Any  # A Flax variables pytree: {"params": ..., "batch_stats": ...}.


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """How raw photos become model inputs: resize the short side, centre crop.

  Attributes:
    image_size: side of the square crop fed to the model.
    resize_size: short side after resizing, before the crop.
  """
  image_size: int
  resize_size: int


@dataclasses.dataclass(frozen=True)
class Classifier:
  """A classifier as pure functions plus the facts stages need about it.

  Attributes:
    name: registry name, e.g. "efficientnet_lite0".
    module: a Flax module whose `__call__(images, train=False)` returns
      `(logits [B, K], features [B, D])` from [0, 1] pixels.
    preprocessing: resize/crop for photos of any size.
    label_space: "imagenet1k" or "cifar10"; selects class names and taxonomies.
    class_names: the K human-readable class names.
  """
  name: str
  module: nn.Module
  preprocessing: Preprocessing
  label_space: str
  class_names: tuple[str, ...]

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  def logits_and_features(self, params: Params,
                          images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Args: params; images float32 [B, H, W, 3] in [0, 1].

    Returns: logits [B, K] and penultimate features [B, D].
    """
    return self.module.apply(params, images, train=False)

  def logits(self, params: Params, images: jax.Array) -> jax.Array:
    """Logits [B, K] for float32 images [B, H, W, 3] in [0, 1]."""
    return self.logits_and_features(params, images)[0]

  def features(self, params: Params, images: jax.Array) -> jax.Array:
    """Penultimate features [B, D] for float32 images [B, H, W, 3] in [0, 1]."""
    return self.logits_and_features(params, images)[1]

  def logits_fn(self, params: Params) -> Callable[[jax.Array], jax.Array]:
    """`images -> logits` with params closed over, for attacks and explanations."""
    return lambda images: self.logits(params, images)


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  """A registry entry: how to build a model and import its weights.

  Attributes:
    make_classifier: registry name -> `Classifier`.
    convert: (torch-named state dict, registry name) -> Flax variables.
    default_checkpoint: the path of weights an installed package ships, if any.
  """
  make_classifier: Callable[[str], Classifier]
  convert: Callable[[Any, str], Params]
  default_checkpoint: Callable[[], str] | None = None
