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

from jaxaudit.corruptions import (blur, digital, frost, jpeg, tables,
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


def _sets(imagenet: TableFn, cifar: TableFn | None = None
          ) -> dict[str, TableFn]:
  """The table functions of both parameter sets (one serves both unless
  `cifar` is given)."""
  return {"imagenet": imagenet, "cifar": cifar or imagenet}


_P = functools.partial
# name: (module, family, random, table functions[, shared tables]), in
# ImageNet-C's order, then the four extra corruptions.
_ENTRIES = {
    "gaussian_noise": ("noise", "noise", True, _sets(digital.scale_params)),
    "shot_noise": ("noise", "noise", True, _sets(digital.scale_params)),
    "impulse_noise": ("noise", "noise", True, _sets(digital.scale_params)),
    "defocus_blur": ("blur", "blur", False, _sets(blur.defocus_params)),
    "glass_blur": ("blur", "blur", True, _sets(blur.glass_params)),
    "motion_blur": ("blur", "blur", True, _sets(blur.motion_params)),
    "zoom_blur": ("blur", "blur", False, _sets(
        _P(blur.zoom_params, centre_trim=False),
        _P(blur.zoom_params, centre_trim=True))),
    "snow": ("weather", "weather", True, _sets(
        _P(weather.snow_params, centre_trim=False),
        _P(weather.snow_params, centre_trim=True))),
    "frost": ("frost", "weather", True, _sets(
        _P(frost.frost_params, scaled=True),
        _P(frost.frost_params, scaled=False)), frost.SHARED),
    "fog": ("weather", "weather", True, _sets(weather.fog_params)),
    "brightness": ("digital", "weather", False,
                   _sets(digital.scale_params)),
    "contrast": ("digital", "digital", False, _sets(digital.scale_params)),
    "elastic_transform": ("digital", "digital", True, _sets(
        _P(digital.elastic_params, scaled=True),
        _P(digital.elastic_params, scaled=False))),
    "pixelate": ("digital", "digital", False,
                 _sets(digital.pixelate_params)),
    "jpeg_compression": ("jpeg", "digital", False, _sets(jpeg.params)),
    "speckle_noise": ("noise", "extra", True, _sets(digital.scale_params)),
    "gaussian_blur": ("blur", "extra", False, _sets(blur.gaussian_params)),
    "spatter": ("weather", "extra", True, _sets(weather.spatter_params)),
    "saturate": ("digital", "extra", False,
                 _sets(digital.saturate_params)),
}
CORRUPTIONS: dict[str, CorruptionSpec] = {
    name: CorruptionSpec(f"jaxaudit.corruptions.{entry[0]}:{name}",
                         *entry[1:])
    for name, entry in _ENTRIES.items()}


def to_levels(images: jax.Array) -> jax.Array:
  """Corrupted [0, 1] pixels -> uint8 as the references store them
  (`np.uint8(x * 255)`: rounded down)."""
  return jnp.floor(jnp.clip(images, 0, 1) * 255).astype(jnp.uint8)
