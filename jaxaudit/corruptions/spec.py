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


# Named selections of corruptions (`config.shift.corruptions`).
GROUPS = {
    "all": tuple(CORRUPTIONS),
    "imagenet_c": tuple(n for n, c in CORRUPTIONS.items()
                        if c.family != "extra"),
    "extra": tuple(n for n, c in CORRUPTIONS.items() if c.family == "extra"),
}


def select(names: str) -> tuple[str, ...]:
  """Comma-separated corruption names or `GROUPS` -> the corruptions, each
  once, in the order given.

  Raises:
    ValueError: an unknown name (the message lists the valid ones).
  """
  out: list[str] = []
  for name in filter(None, (n.strip() for n in names.split(","))):
    if name not in GROUPS and name not in CORRUPTIONS:
      raise ValueError(f"unknown corruption '{name}'; valid: "
                       + ", ".join([*GROUPS, *CORRUPTIONS]))
    out += [n for n in GROUPS.get(name, (name,)) if n not in out]
  if not out:
    raise ValueError("no corruption selected")
  return tuple(out)


def corrupt(entry: CorruptionSpec, built: Mapping[str, jax.Array],
            images: jax.Array, keys: jax.Array, severities: jax.Array
            ) -> jax.Array:
  """One corruption at several severities, batched (no loop: a vmap).

  Args:
    entry: the corruption.
    built: its tables (`CorruptionSpec.build`, as arrays).
    images: float [B, H, W, 3] in [0, 1].
    keys: [B] per-image keys; severity s draws from `fold_in(key, s)`, so
      an image's corrupted version depends on its key and the severity only.
    severities: int [S] in 1-5 (traced).

  Returns:
    float [S, B, H, W, 3] in [0, 1].
  """

  def one(severity):
    folded = jax.vmap(jax.random.fold_in, (0, None))(keys, severity)
    return entry.fn(images, folded, entry.at_severity(built, severity))

  return jax.vmap(one)(severities)


def to_levels(images: jax.Array) -> jax.Array:
  """Corrupted [0, 1] pixels -> uint8 as the references store them
  (`np.uint8(x * 255)`: rounded down)."""
  return jnp.floor(jnp.clip(images, 0, 1) * 255).astype(jnp.uint8)
