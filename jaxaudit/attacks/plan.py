"""An attack stage's `config.attack` parsed once: which attacks, with which
settings and epsilons, each checked against its registry entry.

Epsilon units in the config: L-inf in 1/255 (`1.0` = one grey level), L2 in
[0, 1]-pixel units; a plan holds both the [0, 1]-pixel values and their
config-unit labels ("2/255").
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit.attacks import ATTACKS
from jaxaudit.attacks.spec import AttackSpec
from jaxaudit.errors import ConfigError


class AttackPlan(NamedTuple):
  """One configured attack, parsed and checked once.

  Attributes:
    name: its registry name.
    spec: its registry entry.
    settings: its keyword settings (`config.attack.<name>` less epsilons).
    eps: float32 [E] ascending epsilons in [0, 1]-pixel units.
    eps_labels: [E] their names in the config's units ("2/255", "0.5").
    norm: "linf" or "l2".
  """
  name: str
  spec: AttackSpec
  settings: dict
  eps: np.ndarray
  eps_labels: list[str]
  norm: str


def plans(config: ml_collections.ConfigDict) -> list[AttackPlan]:
  """`config.attack.attacks`, each with its section parsed.

  Raises:
    ConfigError: an unknown attack or setting, or bad epsilons, naming the
      field.
  """
  out = []
  for name in ATTACKS.parse(config.attack.attacks):
    field = f"config.attack.{name}"
    if name not in config.attack:
      raise ConfigError(f"{field}: missing section")
    spec = ATTACKS.get(name)
    section = config.attack[name]
    settings = spec.settings(section, field)
    norm = spec.norm_of(settings)
    eps, labels = parse_epsilons(section.get("epsilons"), norm, field)
    out.append(AttackPlan(name, spec, settings, eps, labels, norm))
  return out


def parse_epsilons(values: Any, norm: str, field: str
              ) -> tuple[np.ndarray, list[str]]:
  """Sorted epsilons in [0, 1]-pixel units [E] and their labels ("2/255")."""
  if isinstance(values, (int, float)):
    values = (values,)
  if not values or any(not isinstance(v, (int, float)) or v < 0
                       for v in values):
    raise ConfigError(f"{field}.epsilons must be a non-empty tuple of "
                      f"numbers >= 0, got {values!r}")
  values = sorted(float(v) for v in values)
  if norm == "linf":
    return (np.asarray(values, np.float32) / 255.0,
            [f"{v:g}/255" for v in values])
  return np.asarray(values, np.float32), [f"{v:g}" for v in values]


def check_traceable(plan: AttackPlan, num_classes: int) -> None:
  """Traces the attack abstractly with its settings on a tiny input, so a bad
  value fails before any compute.

  Raises:
    ParameterError: a setting the attack refuses (the stage names its field).
    ConfigError: a setting of the wrong type, naming the section.
  """
  settings, targeted = plan.spec.split_targeted(plan.settings)
  extra = {"targets": jnp.zeros((1,), jnp.int32)} if targeted else {}
  logits_fn = lambda x: jnp.zeros((x.shape[0], num_classes)) + x.mean()
  try:
    jax.eval_shape(
        lambda x, y, k: plan.spec.fn(logits_fn, x, y, jnp.asarray(plan.eps),
                                     k, **settings, **extra),
        jax.ShapeDtypeStruct((1, 4, 4, 3), jnp.float32),
        jnp.zeros((1,), jnp.int32), jax.random.split(jax.random.key(0), 1))
  except TypeError as e:
    raise ConfigError(f"config.attack.{plan.name}: {e}") from e
