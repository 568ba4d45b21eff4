"""AutoAttack (Croce & Hein 2020): APGD-CE, APGD-T, FAB-T and Square in sequence.

The standard composition, the field's accepted robustness measure (RobustBench
reports it for every model): each attack runs on the examples the previous
ones left robust, and an example is robust only if every attack fails; its
adversarial is the first one found. Settings are the paper's "standard"
version: APGD-CE (100 steps, 1 restart), APGD-T (100 steps, 9 target classes),
FAB-T (100 steps, 9 target classes), Square (5,000 queries).

`autoattack` runs every sub-attack on the whole batch (simple, for the Python
API); the attack stage gets the same per-example results cheaper by running
each sub-attack only on the examples still robust, re-batched (`plan` gives it
the sub-attacks with their settings).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxaudit.attacks import SUBATTACKS, common
from jaxaudit.attacks.runners import SubAttack
from jaxaudit.errors import ParameterError
from jaxaudit.registry import import_target

_TARGETS = {"apgd_ce": "jaxaudit.attacks.apgd:apgd_ce",
            "apgd_t": "jaxaudit.attacks.apgd:apgd_t",
            "fab_t": "jaxaudit.attacks.fab:fab_t",
            "square": "jaxaudit.attacks.square:square"}


def plan(norm: str = "linf", attacks: str = ",".join(SUBATTACKS),
         steps: int = 100, restarts: int = 1, num_target_classes: int = 9,
         queries: int = 5000) -> list[SubAttack]:
  """The sub-attacks in order, each with its settings; every one takes
  epsilons [E] or [E, B] (a radius per example).

  Raises:
    ParameterError: an unknown sub-attack, norm or setting.
  """
  names = [n.strip() for n in attacks.split(",") if n.strip()]
  unknown = [n for n in names if n not in _TARGETS]
  if not names or unknown:
    raise ParameterError("attacks", f"unknown or no sub-attacks {unknown}; "
                         "valid: " + ", ".join(SUBATTACKS))
  if len(set(names)) != len(names):
    raise ParameterError("attacks", f"a sub-attack listed twice: {attacks}")
  common.check_norm(norm)
  settings = {
      "apgd_ce": dict(steps=steps, restarts=restarts),
      "apgd_t": dict(steps=steps, restarts=restarts,
                     num_target_classes=num_target_classes),
      "fab_t": dict(steps=steps, restarts=restarts,
                    num_target_classes=num_target_classes),
      "square": dict(queries=queries, restarts=restarts),
  }
  return [SubAttack(name, import_target(_TARGETS[name]),
                    dict(settings[name], norm=norm),
                    black_box=name == "square")
          for name in names]


def sub_attack_keys(keys: jax.Array, index: int) -> jax.Array:
  """The per-example keys of the `index`-th sub-attack (whatever examples it
  runs on, so re-batching never changes a result)."""
  return jax.vmap(lambda k: jax.random.fold_in(k, index))(keys)


def worst_case(results: list[common.AttackResult]) -> common.AttackResult:
  """Per epsilon and example, the first sub-attack's adversarial that fools
  the model (else the last one's point); `min_norm` the smallest."""
  first = results[0]
  clipped, success, norm, adv_class = (first.clipped, first.success,
                                       first.norm, first.adv_class)
  for result in results[1:]:
    take = ~success & result.success  # [E, B]
    clipped = jnp.where(take[..., None, None, None], result.clipped, clipped)
    norm = jnp.where(take, result.norm, norm)
    adv_class = jnp.where(take, result.adv_class, adv_class)
    success = success | result.success
  min_norm = jnp.min(jnp.stack([r.min_norm for r in results]), axis=0)
  return common.AttackResult(raw=clipped, clipped=clipped, success=success,
                             norm=norm, adv_class=adv_class, min_norm=min_norm)


def autoattack(logits_fn: common.LogitsFn, images: jax.Array,
               labels: jax.Array, epsilons: jax.Array, keys: jax.Array, *,
               norm: str = "linf", attacks: str = ",".join(SUBATTACKS),
               steps: int = 100, restarts: int = 1,
               num_target_classes: int = 9,
               queries: int = 5000) -> common.AttackResult:
  """Standard AutoAttack at every epsilon, each sub-attack on the whole batch.

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K].
    images: float32 [B, H, W, 3] in [0, 1]; labels: int [B].
    epsilons: float [E] radii in `norm`, [0, 1] pixel units.
    keys: [B] per-example PRNG keys (random starts, Square's search).
    norm, attacks, steps, restarts, num_target_classes, queries: see `plan`.

  Returns:
    The per-example worst case over the sub-attacks (`worst_case`).
  """
  results = [sub.fn(logits_fn, images, labels, epsilons,
                    sub_attack_keys(keys, i), **sub.settings)
             for i, sub in enumerate(plan(
                 norm, attacks, steps, restarts, num_target_classes,
                 queries))]
  return worst_case(results)
