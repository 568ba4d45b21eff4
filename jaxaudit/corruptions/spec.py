"""What the shift stage knows of one corruption: one typed registry entry.

A `CorruptionSpec` names the function (imported on first use), its family
(ImageNet-C's noise, blur, weather and digital, or the four extra ones),
whether it draws random numbers, and how each parameter set ("imagenet":
imagecorruptions' numbers and procedures, "cifar": make_cifar_c.py's) turns
the image size into the tables its function reads.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit.corruptions import (blur, digital, frost, jpeg, noise, tables,
                                  weather)
from jaxaudit.registry import import_target

PARAMETER_SETS = ("imagenet", "cifar")
FAMILIES = ("noise", "blur", "weather", "digital", "extra")
SEVERITIES = 5
# (rows, height, width) -> tables, each [SEVERITIES, ...] unless shared.
TableFn = Callable[[Any, int, int], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class CorruptionSpec:
  """One corruption the stage can apply.

  Attributes:
    target: "package.module:function" of `fn(images [B, H, W, 3] in [0, 1],
      keys [B], p) -> [B, H, W, 3] in [0, 1]`.
    family: one of FAMILIES.
    random: it draws from the image's key (else deterministic).
    tables: parameter set -> the function of (its severity rows, height,
      width) that builds the tables `p` holds.
    shared: names of tables without a severity axis (the same for all).
  """
  target: str
  family: str
  random: bool
  tables: Mapping[str, TableFn]
  shared: tuple[str, ...] = ()

  @property
  def fn(self) -> Callable[..., jax.Array]:
    return import_target(self.target)

  def build(self, name: str, parameter_set: str, height: int, width: int
            ) -> dict[str, np.ndarray]:
    """The tables of `parameter_set` for images of `height` x `width`."""
    rows = {"imagenet": tables.IMAGENET, "cifar": tables.CIFAR}[
        parameter_set][name]
    return self.tables[parameter_set](rows, height, width)

  def at_severity(self, built: Mapping[str, jax.Array], severity: jax.Array
                  ) -> dict[str, jax.Array]:
    """The tables `fn` reads at `severity` (1-5, traced: one program serves
    every severity)."""
    return {k: v if k in self.shared else jnp.take(v, severity - 1, axis=0)
            for k, v in built.items()}


def _same(fn: TableFn) -> dict[str, TableFn]:
  """One table function for both parameter sets."""
  return {"imagenet": fn, "cifar": fn}


def _sets(imagenet: TableFn, cifar: TableFn) -> dict[str, TableFn]:
  return {"imagenet": imagenet, "cifar": cifar}


_P = functools.partial
CORRUPTIONS: dict[str, CorruptionSpec] = {
    "gaussian_noise": CorruptionSpec(
        "jaxaudit.corruptions.noise:gaussian_noise", "noise", True,
        _same(noise.params)),
    "shot_noise": CorruptionSpec(
        "jaxaudit.corruptions.noise:shot_noise", "noise", True,
        _same(noise.params)),
    "impulse_noise": CorruptionSpec(
        "jaxaudit.corruptions.noise:impulse_noise", "noise", True,
        _same(noise.params)),
    "defocus_blur": CorruptionSpec(
        "jaxaudit.corruptions.blur:defocus_blur", "blur", False,
        _same(blur.defocus_params)),
    "glass_blur": CorruptionSpec(
        "jaxaudit.corruptions.blur:glass_blur", "blur", True,
        _same(blur.glass_params)),
    "motion_blur": CorruptionSpec(
        "jaxaudit.corruptions.blur:motion_blur", "blur", True,
        _same(blur.motion_params)),
    "zoom_blur": CorruptionSpec(
        "jaxaudit.corruptions.blur:zoom_blur", "blur", False,
        _sets(_P(blur.zoom_params, centre_trim=False),
              _P(blur.zoom_params, centre_trim=True))),
    "snow": CorruptionSpec(
        "jaxaudit.corruptions.weather:snow", "weather", True,
        _sets(_P(weather.snow_params, centre_trim=False),
              _P(weather.snow_params, centre_trim=True))),
    "frost": CorruptionSpec(
        "jaxaudit.corruptions.frost:frost", "weather", True,
        _sets(_P(frost.frost_params, scaled=True),
              _P(frost.frost_params, scaled=False)), shared=frost.SHARED),
    "fog": CorruptionSpec(
        "jaxaudit.corruptions.weather:fog", "weather", True,
        _same(weather.fog_params)),
    "brightness": CorruptionSpec(
        "jaxaudit.corruptions.digital:brightness", "weather", False,
        _same(digital.scale_params)),
    "spatter": CorruptionSpec(
        "jaxaudit.corruptions.weather:spatter", "extra", True,
        _same(weather.spatter_params)),
    "contrast": CorruptionSpec(
        "jaxaudit.corruptions.digital:contrast", "digital", False,
        _same(digital.scale_params)),
    "elastic_transform": CorruptionSpec(
        "jaxaudit.corruptions.digital:elastic_transform", "digital", True,
        _sets(_P(digital.elastic_params, scaled=True),
              _P(digital.elastic_params, scaled=False))),
    "pixelate": CorruptionSpec(
        "jaxaudit.corruptions.digital:pixelate", "digital", False,
        _same(digital.pixelate_params)),
    "jpeg_compression": CorruptionSpec(
        "jaxaudit.corruptions.jpeg:jpeg_compression", "digital", False,
        _same(jpeg.params)),
    "speckle_noise": CorruptionSpec(
        "jaxaudit.corruptions.noise:speckle_noise", "extra", True,
        _same(noise.params)),
    "gaussian_blur": CorruptionSpec(
        "jaxaudit.corruptions.blur:gaussian_blur", "extra", False,
        _same(blur.gaussian_params)),
    "saturate": CorruptionSpec(
        "jaxaudit.corruptions.digital:saturate", "extra", False,
        _same(digital.saturate_params)),
}


def to_levels(images: jax.Array) -> jax.Array:
  """Corrupted [0, 1] pixels -> uint8 as the references store them
  (`np.uint8(x * 255)`: rounded down)."""
  return jnp.floor(jnp.clip(images, 0, 1) * 255).astype(jnp.uint8)
