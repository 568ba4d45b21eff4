"""Auto-PGD (Croce & Hein 2020), APGD-CE and APGD-T, in the L-inf and L2 norms.

APGD is PGD without a step-size parameter: it starts at a random point on the
eps sphere with step size 2 eps, takes a plain first step and then momentum
steps (alpha = `momentum`, 0.75), and at checkpoints halves the step size and
goes back to its best point when at most a fraction `rho` of the steps since
the last checkpoint raised the loss, or when neither the step size nor the
best loss changed since the last checkpoint (never at the first). Checkpoints,
the `<=` and the first checkpoint follow the authors' code
(autoattack/autopgd_base.py), which at 100 steps places the paper's
w_j = ceil(p_j steps). The first step's rise is judged against the starting
point's loss, as in the paper: the authors' code compares it with an
unwritten, still zero entry of its loss history (index -1), a bug that counts
a rise wherever that loss is positive. APGD-T runs it once per target class
(the most likely wrong classes of the clean image) on the targeted DLR loss.
A fooled example keeps its first fooling point (the authors' code, its last),
so stopping early changes nothing. Everything is per example, so results do
not depend on the batch, and each example may have its own radius. Epsilons
are a vmapped axis, restarts and targets a scanned one; a run stops, and later
runs are skipped, once every example is fooled.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit import conv_layout
from jaxaudit.attacks import common
from jaxaudit.errors import ParameterError

LOSSES = ("ce", "dlr", "dlr_targeted")
_MIN_CLASSES = {"ce": 2, "dlr": 3, "dlr_targeted": 4}
_TINY = 1e-12


def checkpoints(steps: int) -> np.ndarray:
  """bool [steps + 1]: True at the iterations (1..steps) after which APGD
  checks its step size, placed as the authors' code places them: the first
  after max(int(0.22 steps), 1) steps, each later one max(int(0.03 steps), 1)
  steps sooner after its predecessor than the one before, but at least
  max(int(0.06 steps), 1) steps after it (at 100 steps: 22, 41, 57, 70, 80,
  87, 93, 99, the paper's w_j)."""
  table = np.zeros(steps + 1, bool)
  length = max(int(0.22 * steps), 1)
  shrink = max(int(0.03 * steps), 1)
  shortest = max(int(0.06 * steps), 1)
  at = length
  while at <= steps:
    table[at] = True
    length = max(length - shrink, shortest)
    at += length
  return table


def _loss(logits: jax.Array, labels: jax.Array, targets: jax.Array | None,
          loss: str) -> jax.Array:
  """Per-example loss [B] that APGD ascends, from logits [B, K]."""
  if loss == "ce":
    return common.cross_entropy(logits, labels)
  ordered = jnp.sort(logits, axis=-1)
  if loss == "dlr":
    return common.margin(logits, labels) / (ordered[:, -1] - ordered[:, -3]
                                            + _TINY)
  own = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
  target = jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]
  return (target - own) / (ordered[:, -1] - 0.5 * (ordered[:, -3]
                                                   + ordered[:, -4]) + _TINY)


def _start(key: jax.Array, shape: tuple[int, ...], eps: jax.Array,
           norm: str) -> jax.Array:
  """One random perturbation [H, W, C] of norm eps (scalar), as the authors':
  uniform noise in [-1, 1] scaled to L-inf norm eps, or a normal direction
  scaled to L2 norm eps."""
  if norm == "linf":
    direction = jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
  else:
    direction = jax.random.normal(key, shape)
  return eps * direction / (common.lp_norm(direction, norm) + _TINY)


def halves_step_size(increases: jax.Array, window: jax.Array, rho: float,
                     reduced_last: jax.Array, best_last: jax.Array,
                     best: jax.Array) -> jax.Array:
  """bool [B]: whether APGD halves the step size at a checkpoint, by the
  authors' rule: at most a fraction `rho` of the `window` steps since the last
  checkpoint raised the loss (`increases` [B]), or the step size was not
  halved at the last checkpoint (`reduced_last` [B], True before the first,
  so that only the first condition applies there) and the best loss has not
  risen since (`best_last` [B] then, `best` [B] now)."""
  return (increases <= rho * window) | (~reduced_last & (best_last >= best))


class _State(NamedTuple):
  """APGD's per-example state ([B, H, W, C] images, [B] scalars)."""
  x: jax.Array  # current iterate (the best point after a reduction)
  x_prev: jax.Array  # iterate the last step started from (momentum)
  grad: jax.Array  # loss gradient at x
  loss: jax.Array  # loss of the last computed iterate
  step_size: jax.Array
  best_x: jax.Array
  best_grad: jax.Array
  best_loss: jax.Array
  fool_x: jax.Array  # first point that fooled the model
  fooled: jax.Array
  increases: jax.Array  # steps that raised the loss since the last checkpoint
  last_check: jax.Array  # iteration of the last checkpoint
  last_best_loss: jax.Array  # best loss at the last checkpoint
  last_reduced: jax.Array  # step size halved at the last checkpoint


def _apgd_run(logits_fn, images, labels, targets, eps, keys, *, norm, steps,
              loss, rho, momentum):
  """One APGD run at radii `eps` [B] -> (adversarials [B, ...], best loss [B],
  fooled [B]): the first fooling point where there is one, else the best."""
  per_example = lambda v: v[:, None, None, None]
  project = lambda x: common.clip_to_ball(images, x, eps, norm)

  def objective(x):
    logits = logits_fn(x)
    losses = _loss(logits, labels, targets, loss)
    return jnp.sum(losses), (losses, jnp.argmax(logits, -1) != labels)

  grad_fn = conv_layout.canonical_convolutions(
      jax.grad(objective, has_aux=True))
  table = jnp.asarray(checkpoints(steps))

  x0 = project(images + jax.vmap(
      lambda k, e: _start(k, images.shape[1:], e, norm))(keys, eps))
  grad0, (loss0, fooled0) = grad_fn(x0)
  batch = labels.shape[0]
  state = _State(
      x=x0, x_prev=x0, grad=grad0, loss=loss0,
      step_size=2.0 * eps, best_x=x0, best_grad=grad0,
      best_loss=loss0, fool_x=x0, fooled=fooled0,
      increases=jnp.zeros((batch,), jnp.int32), last_check=jnp.int32(0),
      last_best_loss=loss0, last_reduced=jnp.ones((batch,), bool))

  def body(i, s: _State) -> _State:
    alpha = jnp.where(i == 0, 1.0, momentum)
    z = project(s.x + per_example(s.step_size)
                * common.normalize_gradient(s.grad, norm))
    x = project(s.x + alpha * (z - s.x) + (1.0 - alpha) * (s.x - s.x_prev))
    grad, (losses, fooled) = grad_fn(x)
    first = fooled & ~s.fooled
    improved = losses > s.best_loss
    best_x = jnp.where(per_example(improved), x, s.best_x)
    best_grad = jnp.where(per_example(improved), grad, s.best_grad)
    best_loss = jnp.where(improved, losses, s.best_loss)
    increases = s.increases + (losses > s.loss)
    check = table[i + 1]
    reduce = check & halves_step_size(increases, i + 1 - s.last_check, rho,
                                      s.last_reduced, s.last_best_loss,
                                      best_loss)
    return _State(
        x=jnp.where(per_example(reduce), best_x, x), x_prev=s.x,
        grad=jnp.where(per_example(reduce), best_grad, grad), loss=losses,
        step_size=jnp.where(reduce, 0.5 * s.step_size, s.step_size),
        best_x=best_x, best_grad=best_grad, best_loss=best_loss,
        fool_x=jnp.where(per_example(first), x, s.fool_x),
        fooled=s.fooled | fooled,
        increases=jnp.where(check, 0, increases),
        last_check=jnp.where(check, i + 1, s.last_check),
        last_best_loss=jnp.where(check, best_loss, s.last_best_loss),
        last_reduced=jnp.where(check, reduce, s.last_reduced))

  # Stopping once every example is fooled changes no result: a fooled
  # example's output is its first fooling point.
  _, s = jax.lax.while_loop(
      lambda c: (c[0] < steps) & ~jnp.all(c[1].fooled),
      lambda c: (c[0] + 1, body(*c)), (jnp.int32(0), state))
  return (jnp.where(per_example(s.fooled), s.fool_x, s.best_x), s.best_loss,
          s.fooled)


def apgd(logits_fn: common.LogitsFn, images: jax.Array, labels: jax.Array,
         epsilons: jax.Array, keys: jax.Array, *, norm: str = "linf",
         steps: int = 100, restarts: int = 1, loss: str = "ce",
         num_target_classes: int = 9, rho: float = 0.75,
         momentum: float = 0.75) -> common.AttackResult:
  """APGD at every epsilon, over restarts (and target classes for APGD-T).

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K].
    images: float32 [B, H, W, 3] in [0, 1].
    labels: int [B] true classes.
    epsilons: float [E] radii in [0, 1] pixel units (every example at every
      epsilon), or float [E, B] (a radius per epsilon and example).
    keys: [B] per-example PRNG keys (random starts depend only on them).
    norm: "linf" or "l2".
    steps: iterations per run.
    restarts: random starts per epsilon (per target class for APGD-T).
    loss: "ce" (APGD-CE), "dlr" (untargeted DLR) or "dlr_targeted" (APGD-T:
      one run per target, the k-th most likely wrong clean class,
      k = 1..min(num_target_classes, K - 1)).
    num_target_classes: target classes for "dlr_targeted".
    rho: step size halved when at most this fraction of the steps since the
      last checkpoint raised the loss.
    momentum: weight of the new step against the previous one (alpha).

  Returns:
    An `AttackResult` with E epsilons; `raw` is, per epsilon, the first run's
    first fooling point, else the highest-loss point of all runs.
  """
  common.check_norm(norm)
  if loss not in LOSSES:
    raise ParameterError("loss", f"unknown '{loss}'; valid: "
                         + ", ".join(LOSSES))
  for name, value in (("steps", steps), ("restarts", restarts),
                      ("num_target_classes", num_target_classes)):
    if value < 1:
      raise ParameterError(name, f"must be >= 1, got {value}")
  if not 0.0 < rho <= 1.0:
    raise ParameterError("rho", f"must be in (0, 1], got {rho}")
  if not 0.0 <= momentum <= 1.0:
    raise ParameterError("momentum", f"must be in [0, 1], got {momentum}")
  clean = logits_fn(images)
  classes = clean.shape[-1]
  if classes < _MIN_CLASSES[loss]:
    raise ParameterError("loss", f"'{loss}' needs at least "
                         f"{_MIN_CLASSES[loss]} classes, the model has {classes}")
  if loss == "dlr_targeted":
    others = jnp.where(jax.nn.one_hot(labels, classes, dtype=bool), -jnp.inf,
                       clean)
    count = min(num_target_classes, classes - 1)
    targets = jnp.argsort(-others, axis=-1)[:, :count].T.astype(jnp.int32)
  else:
    targets = jnp.zeros((1,) + labels.shape, jnp.int32)  # unused by the loss
  targets = jnp.repeat(targets, restarts, axis=0)  # [runs, B]
  run_keys = jax.vmap(lambda r: jax.vmap(
      lambda k: jax.random.fold_in(k, r))(keys))(jnp.arange(len(targets)))
  run = functools.partial(_apgd_run, logits_fn, images, labels, norm=norm,
                          steps=steps, loss=loss, rho=rho, momentum=momentum)
  eps_rows = common.epsilon_rows(epsilons, labels.shape[0])  # [E, B]
  eps_count = eps_rows.shape[0]

  def scan_body(carry, per_run):
    best, best_loss, fooled = carry
    target, run_key = per_run
    x, losses, run_fooled = jax.lax.cond(
        jnp.all(fooled),
        lambda: (best, jnp.full_like(best_loss, -jnp.inf), fooled),
        lambda: jax.vmap(lambda e: run(target, e, run_key))(eps_rows))
    take = ~fooled & (run_fooled | (losses > best_loss))
    return (jnp.where(take[..., None, None, None], x, best),
            jnp.where(take, losses, best_loss), fooled | run_fooled), None

  init = (jnp.broadcast_to(images, (eps_count,) + images.shape),
          jnp.full((eps_count,) + labels.shape, -jnp.inf),
          jnp.zeros((eps_count,) + labels.shape, bool))
  (raw, _, _), _ = jax.lax.scan(scan_body, init, (targets, run_keys))
  return common.score_epsilons(logits_fn, images, labels, raw, eps_rows, norm)


apgd_ce = functools.partial(apgd, loss="ce")
apgd_t = functools.partial(apgd, loss="dlr_targeted")
