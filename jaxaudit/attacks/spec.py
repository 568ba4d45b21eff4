"""What the attack stage knows of one attack: one typed registry entry.

An `AttackSpec` holds every fact the stage needs, so the stage has no attack
names in its code: the function (imported when first used, so unused attacks
cost no import), its threat model, whether it searches minimal perturbations,
the schema of its config section with defaults, and the runner that takes it
over the examples (`runners.batched`, or a composition's re-batched
`runners.sequence`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from jaxaudit.attacks import runners
from jaxaudit.errors import ConfigError
from jaxaudit.registry import import_target


@dataclasses.dataclass(frozen=True)
class AttackSpec:
  """One attack the stage can run.

  Attributes:
    target: "package.module:function" of
      `attack(logits_fn, images, labels, epsilons, keys, **settings)`.
    defaults: its `config.attack.<name>` section with the stage's defaults:
      `epsilons` and every setting the function takes (the schema: a field
      not here is refused).
    norm: its threat model, "linf" or "l2"; "" where its `norm` setting
      decides.
    minimal: it searches each example's smallest adversarial perturbation
      (its minimal norms give the whole robust-accuracy-vs-epsilon curve).
    targeted: its `targeted` setting makes the stage draw one random target
      class per example (passed as `targets`).
    keeps_adversarials: its adversarials can be stored for later stages and
      the gallery (a composition's come from several attacks).
    runner: `runner(spec, settings, job) -> runners.RunOutput`, how the stage
      runs it over a process's examples.
  """
  target: str
  defaults: Mapping[str, Any]
  norm: str = ""
  minimal: bool = False
  targeted: bool = False
  keeps_adversarials: bool = True
  runner: Callable[..., runners.RunOutput] = runners.batched

  @property
  def fn(self) -> Callable[..., Any]:
    """The attack function."""
    return import_target(self.target)

  def run(self, settings: Mapping[str, Any],
          job: runners.Job) -> runners.RunOutput:
    """The attack over `job`'s examples, by its runner."""
    return self.runner(self, settings, job)

  def split_targeted(self, settings: Mapping[str, Any]) -> tuple[dict, bool]:
    """(the function's keyword settings, whether the stage draws targets):
    the `targeted` setting is the stage's, not the function's."""
    settings = dict(settings)
    targeted = bool(settings.pop("targeted", False))
    return settings, targeted and self.targeted

  def norm_of(self, settings: Mapping[str, Any]) -> str:
    """The norm its perturbations are measured in."""
    return self.norm or str(settings.get("norm", "l2"))

  def settings(self, section: Mapping[str, Any], field: str) -> dict:
    """The keyword settings of a config section (everything but `epsilons`).

    Raises:
      ConfigError: a field the attack does not take, naming it.
    """
    unknown = sorted(set(section) - set(self.defaults))
    if unknown:
      raise ConfigError(f"{field}: unknown setting(s) {unknown}; valid: "
                        + ", ".join(sorted(self.defaults)))
    return {k: v for k, v in section.items() if k != "epsilons"}
