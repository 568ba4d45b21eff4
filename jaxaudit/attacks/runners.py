"""How the attack stage takes an attack over a process's examples.

`batched`: one compiled step per batch shape; the epsilons are a traced
argument, so a sweep over their values compiles nothing new, and the attack
sees every epsilon at once. `sequence`: a composition (AutoAttack) whose
sub-attacks each run only on what the previous ones left robust. Its rows are
(example, epsilon) pairs, each carrying its own radius, so every sub-attack
runs once over all epsilons, re-batched to one of a few fixed batch shapes:
it compiles once per shape whatever the number or values of the epsilons.

Random starts use per-example keys (`sharding.example_keys` of the global id),
so results do not depend on the batch, the device count or the re-batching.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit import compile_count
from jaxaudit.attacks import common, trust
from jaxaudit.data.pixels import unit_images
from jaxaudit.registry import import_target
from jaxaudit.sharding import example_keys

ADVERSARIAL = "adversarial"
# A composition's batches: the stage's batch size divided by one of these
# powers of two (the smallest shape that holds what is left), so a sub-attack
# compiles one shape and pads its rows at most two-fold.
REBATCH_DIVISORS = (1, 2, 4, 8, 16, 32)


@dataclasses.dataclass(frozen=True)
class Job:
  """One attack over this process's examples, as the stage hands it over.

  Attributes:
    name: the attack's name (names its shard folders).
    executor: runs steps over examples (`jaxaudit.executor.Executor`).
    logits_fn: params -> (images [B, S, S, 3] in [0, 1] -> logits [B, K]).
    params: the model's params.
    rng: the key of the attack's randomness (per-example keys come from it).
    images: uint8 [n, S, S, 3] (an array or a streamed column).
    labels: int32 [n] the class attacked (the label, else the prediction).
    ids: int64 [n] global example ids, ascending.
    correct: bool [n] the model predicts `labels` (only these are attacked
      by a composition).
    labelled: bool [n] the example has a label (robust accuracy's base).
    epsilons: float32 [E] ascending, [0, 1]-pixel units.
    epsilon_labels: [E] their names in the config's units ("2/255").
    batch_size: the stage's global batch size.
    store: also return the adversarials at the largest epsilon.
  """
  name: str
  executor: Any
  logits_fn: Callable[[Any], common.LogitsFn]
  params: Any
  rng: jax.Array
  images: Any
  labels: np.ndarray
  ids: np.ndarray
  correct: np.ndarray
  labelled: np.ndarray
  epsilons: np.ndarray
  epsilon_labels: list[str]
  batch_size: int
  store: bool


class RunOutput(NamedTuple):
  """What a runner gives the stage.

  Attributes:
    results: this process's per-example results: `success`, `norm`,
      `adv_class` [n, E], `min_norm` [n] (and `ADVERSARIAL` [n, S, S, 3] on
      disk when the job asked to store).
    details: summary fields of a composition (robust accuracy after each
      sub-attack per epsilon), else {}.
    warnings: what the run itself found suspicious.
    timing: compilations and seconds (`compile_count.CompileStats.as_dict`),
      per sub-attack for a composition.
  """
  results: dict[str, Any]
  details: dict[str, Any]
  warnings: list[str]
  timing: dict[str, Any]


class SubAttack(NamedTuple):
  """One attack of a composition, as its plan gives it.

  Attributes:
    name: its registry name.
    fn: the attack function (takes epsilons [1, B], one radius per row).
    settings: its keyword settings.
    black_box: it uses no gradients (a success where every gradient attack
      failed points at gradient masking).
  """
  name: str
  fn: Callable[..., common.AttackResult]
  settings: Mapping[str, Any]
  black_box: bool


def padding_fooled(logits_fn: common.LogitsFn, images: jax.Array,
                   batch: dict) -> jax.Array:
  """The batch's labels [B], padding rows (`mask` False) given a class the
  model does not predict: searches that stop once a whole batch is fooled
  (APGD, DeepFool, Square) then never wait on them. Full batches, the usual
  case, skip the extra forward pass."""
  labels = batch["label"].astype(jnp.int32)

  def relabel():
    logits = logits_fn(images)
    wrong = (jnp.argmax(logits, -1) + 1) % logits.shape[-1]
    return jnp.where(batch["mask"], labels, wrong.astype(jnp.int32))

  return jax.lax.cond(jnp.all(batch["mask"]), lambda: labels, relabel)


def random_targets(logits_fn: common.LogitsFn, images: jax.Array,
                   labels: jax.Array, keys: jax.Array) -> jax.Array:
  """One target class per example [B], uniform over the classes other than
  its label, from its own key."""
  num_classes = jax.eval_shape(logits_fn, images[:1]).shape[-1]
  shift = jax.vmap(lambda k: jax.random.randint(
      jax.random.fold_in(k, 1), (), 1, num_classes))(keys)
  return (labels + shift) % num_classes


def batched(spec: Any, settings: Mapping[str, Any], job: Job) -> RunOutput:
  """`spec`'s attack on every example at every epsilon, batch by batch."""
  settings, targeted = spec.split_targeted(settings)
  fn = spec.fn

  def step(state, batch):
    params, rng, epsilons = state
    logits_fn = job.logits_fn(params)
    images = unit_images(batch["image"])
    labels = padding_fooled(logits_fn, images, batch)
    keys = example_keys(rng, batch["id"])
    extra = ({"targets": random_targets(logits_fn, images, labels, keys)}
             if targeted else {})
    result = fn(logits_fn, images, labels, epsilons, keys, **settings,
                **extra)
    out = {"success": result.success.T, "norm": result.norm.T,
           "adv_class": result.adv_class.T, "min_norm": result.min_norm}
    if job.store:
      out[ADVERSARIAL] = result.clipped[-1]
    return out

  with compile_count.counting() as stats:
    results = job.executor.run(
        job.name, step, (job.params, job.rng, job.epsilons),
        {"image": job.images, "label": job.labels,
         "id": job.ids.astype(np.int32)},
        batch_size=job.batch_size, keep_on_disk=(ADVERSARIAL,))
  logging.info("attack %s: %s", job.name, stats.line())
  return RunOutput(results, {}, [], stats.as_dict())


def rebatch(batch_size: int, rows: int) -> int:
  """The batch for `rows` rows: the smallest of the fixed shapes
  (`batch_size / REBATCH_DIVISORS`) that holds them, else `batch_size`."""
  shapes = sorted({max(1, batch_size // d) for d in REBATCH_DIVISORS})
  return next((s for s in shapes if s >= rows), batch_size)


def _sub_step(job: Job, sub: SubAttack, index: int) -> Callable:
  """The compiled step of a composition's `index`-th attack: rows carry
  their own radius (`epsilon` [B]) and example id (keys)."""

  def step(state, batch):
    params, rng = state
    logits_fn = job.logits_fn(params)
    images = unit_images(batch["image"])
    keys = jax.vmap(lambda k: jax.random.fold_in(k, index))(
        example_keys(rng, batch["id"]))
    result = sub.fn(logits_fn, images, padding_fooled(logits_fn, images,
                                                      batch),
                    batch["epsilon"][None], keys, **sub.settings)
    return {"success": result.success[0], "norm": result.norm[0],
            "adv_class": result.adv_class[0]}

  return step


def sequence(spec: Any, settings: Mapping[str, Any], job: Job, *,
             plan: str) -> RunOutput:
  """A composition: each sub-attack of `plan(**settings)` runs on the
  (example, epsilon) rows every earlier one left robust; a row's adversarial
  is the first found. Only correctly classified examples are attacked."""
  del spec
  subs = import_target(plan)(**settings)
  n, num_eps = len(job.ids), len(job.epsilons)
  example = np.repeat(np.arange(n), num_eps)
  which = np.tile(np.arange(num_eps), n)
  alive = job.correct[example].copy()
  found = {"success": np.zeros(n * num_eps, bool),
           "norm": np.zeros(n * num_eps, np.float32),
           "adv_class": job.labels[example].astype(np.int32)}
  after = {label: {} for label in job.epsilon_labels}
  timing, warnings = {}, []
  labelled = max(job.executor.reduce(float(job.labelled.sum())), 1.0)
  for i, sub in enumerate(subs):
    rows = np.flatnonzero(alive)
    total = int(job.executor.reduce(float(len(rows))))
    with compile_count.counting() as stats:
      if total:
        out = job.executor.run(
            f"{job.name}.{sub.name}", _sub_step(job, sub, i),
            (job.params, job.rng),
            {"image": job.images[example[rows]],
             "label": job.labels[example[rows]],
             "id": job.ids[example[rows]].astype(np.int32),
             "epsilon": job.epsilons[which[rows]]},
            batch_size=rebatch(job.batch_size, total),
            ids=job.ids[example[rows]] * num_eps + which[rows])
        hit = rows[out["success"].astype(bool)]
        for key in found:
          found[key][hit] = out[key][out["success"].astype(bool)]
        found["success"][hit] = True
        alive[hit] = False
        if sub.black_box:
          warnings += _black_box_warnings(job, sub.name, which[hit])
    timing[sub.name] = stats.as_dict()
    logging.info("attack %s: %s on %d rows: %s", job.name, sub.name, total,
                 stats.line())
    for e, label in enumerate(job.epsilon_labels):
      robust = alive & job.labelled[example] & (which == e)
      after[label][sub.name] = job.executor.reduce(
          float(robust.sum())) / labelled
  results = {k: v.reshape(n, num_eps) for k, v in found.items()}
  results["min_norm"] = np.where(results["success"], results["norm"],
                                 np.inf).min(axis=1).astype(np.float32)
  return RunOutput(results, {"robust_accuracy_after": after}, warnings,
                   {"sub_attacks": timing})


def _black_box_warnings(job: Job, sub: str, fooled_at: np.ndarray
                        ) -> list[str]:
  """The black-box attack's successes per epsilon (`fooled_at`: the epsilon
  index of each row it fooled) as `trust.black_box_warnings`."""
  counts = np.bincount(fooled_at, minlength=len(job.epsilons))
  totals = {label: int(job.executor.reduce(float(c)))
            for label, c in zip(job.epsilon_labels, counts)}
  return trust.black_box_warnings(job.name, sub, totals)
