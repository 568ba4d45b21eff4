"""FAB, the fast adaptive boundary attack (Croce & Hein 2020), L-inf and L2.

A minimal-norm attack. Each step linearises the boundary between the label and
the closest other class (or, in FAB-T, one target class), projects both the
current point x and the image x0 onto that hyperplane intersected with the box
[0, 1] (the exact minimal-norm projection, sort-based), and moves to

  x <- clip((1 - alpha) (x + eta d_x) + alpha (x0 + eta d_x0), 0, 1),
  alpha = min(|d_x| / (|d_x| + |d_x0|), alpha_max);

when x is misclassified it is recorded if smaller than the best so far and
pulled back to x0 + beta (x - x0). FAB-T runs once per target (the label's
runner-up clean logits) and keeps the smallest adversarial, any class counting,
as in AutoAttack. An adversarial counts at a radius eps only if its norm is at
most eps, the authors' acceptance rule (autoattack/fab_base.py, `perturb`):
one farther out is not clipped into the ball, the image stands in for it.
The first run per target starts at the image and does not depend on eps;
further restarts start at a random point of norm min(best, eps) / 2 around the
image, so they are run per epsilon. The authors' runs forget `best` and start
at norm eps / 2, but AutoAttack restarts only the examples without an
adversarial within eps, whose min(best, eps) is eps, so success is the same
and the smaller start only refines `min_norm`. Everything is per example, so
each example may have its own radius, inside `lax.scan`/`fori_loop`, with the
convolutions given XLA:CPU's fast layouts (`jaxaudit.conv_layout`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxaudit import conv_layout
from jaxaudit.attacks import common
from jaxaudit.errors import ParameterError

Best = tuple[jax.Array, jax.Array]  # (adversarials [B, H, W, 3], norms [B]).


def project_to_boundary(points: jax.Array, w: jax.Array, b: jax.Array,
                        norm: str) -> jax.Array:
  """Minimal-norm steps onto {z: w.z = b} within the box [0, 1].

  Solves min |d| s.t. w.(t + d) = b, 0 <= t + d <= 1 per row: moving pixel i
  in its descent direction by min(lambda, room_i) (L-inf) or
  min(lambda |w_i|, room_i) (L2) lowers |w.t - b| by a piecewise-linear,
  increasing function of lambda whose breakpoints are sorted once. Where the
  box cannot reach the hyperplane, every pixel moves to its bound.

  Args:
    points: float32 [N, D] points t in [0, 1].
    w: float32 [N, D] hyperplane normals.
    b: float32 [N] offsets.
    norm: "linf" or "l2".

  Returns:
    float32 [N, D] steps d.
  """
  excess = jnp.sum(w * points, axis=-1) - b
  w = jnp.where(excess[:, None] < 0, -w, w)  # Now w.t >= b: lower w.z.
  excess = jnp.abs(excess)
  if norm == "l2":
    w = jnp.where(jnp.abs(w) < 1e-8, 0.0, w)
  size = jnp.abs(w)
  room = jnp.where(w > 0, points, 1.0 - points)  # Distance to the bound.
  if norm == "linf":
    breaks, slope = room, size
  else:
    breaks = jnp.where(size > 0, room / jnp.where(size > 0, size, 1.0),
                       jnp.inf)
    slope = size * size
  # Past its breakpoint pixel i is at its bound and contributes size * room.
  breaks, slope, saturated = jax.lax.sort((breaks, slope, size * room),
                                          num_keys=1)
  done = jnp.cumsum(saturated, axis=-1)  # From pixels 1..k at their bounds.
  rest = jnp.flip(jnp.cumsum(jnp.flip(slope, -1), -1), -1)  # Slopes k..D.
  rest_after = jnp.concatenate([rest[:, 1:], jnp.zeros_like(rest[:, :1])], -1)
  reach = done + jnp.where(rest_after > 0, breaks * rest_after, 0.0)
  below = jnp.sum(reach < excess[:, None], axis=-1)  # Breakpoints not enough.
  done = jnp.concatenate([jnp.zeros_like(done[:, :1]), done], -1)
  rest = jnp.concatenate([rest, jnp.zeros_like(rest[:, :1])], -1)
  done, rest = (jnp.take_along_axis(v, below[:, None], -1) for v in (done,
                                                                     rest))
  lam = jnp.maximum(excess[:, None] - done, 0.0) / jnp.maximum(rest, 1e-30)
  move = jnp.minimum(lam if norm == "linf" else lam * size, room)
  move = jnp.where((below == w.shape[-1])[:, None], room, move)
  return jnp.where(size > 0, -jnp.sign(w) * move, 0.0)


def _flat_norm(delta: jax.Array, norm: str) -> jax.Array:
  """Per-row norm of [N, D] -> [N]."""
  if norm == "linf":
    return jnp.max(jnp.abs(delta), axis=-1)
  return jnp.sqrt(jnp.sum(jnp.square(delta), axis=-1))


def _fab_run(logits_fn, images, labels, differences, start, best: Best, *,
             norm, steps, alpha_max, eta, beta) -> Best:
  """`steps` FAB steps from `start` [B, H, W, 3] across the boundaries
  `differences` [C, B, K] (other class minus label), each example linearising
  its nearest one; returns `best` updated with every smaller adversarial."""
  batch = images.shape[0]
  origin = images.reshape(batch, -1)

  def body(_, carry):
    x, best_adv, best_norm = carry
    logits, pullback = jax.vjp(logits_fn, x)
    gaps = jnp.einsum("cbk,bk->bc", differences, logits)  # [B, C].
    grads = jax.vmap(lambda d: pullback(d)[0])(differences)
    grads = jnp.moveaxis(grads, 0, 1).reshape(batch, differences.shape[0], -1)
    scale = (jnp.sqrt(jnp.sum(jnp.square(grads), -1)) if norm == "l2"
             else jnp.sum(jnp.abs(grads), -1))  # The dual norm.
    nearest = jnp.argmin(jnp.abs(gaps) / (scale + 1e-12), axis=1)
    gap = jnp.take_along_axis(gaps, nearest[:, None], 1)[:, 0]
    w = jnp.take_along_axis(grads, nearest[:, None, None], 1)[:, 0]
    flat = x.reshape(batch, -1)
    b = jnp.sum(w * flat, -1) - gap  # The linearised boundary: w.z = b.
    moves = project_to_boundary(jnp.concatenate([flat, origin]),
                                 jnp.concatenate([w, w]),
                                 jnp.concatenate([b, b]), norm)
    lengths = jnp.maximum(_flat_norm(moves, norm), 1e-8)
    here, there = lengths[:batch], lengths[batch:]
    alpha = jnp.clip(here / (here + there), 0.0, alpha_max)[:, None]
    flat = jnp.clip((1 - alpha) * (flat + eta * moves[:batch])
                    + alpha * (origin + eta * moves[batch:]), 0.0, 1.0)
    x = flat.reshape(images.shape)
    adversarial = common.is_adversarial(logits_fn(x), labels, None)
    size = common.lp_norm(x - images, norm)
    better = adversarial & (size < best_norm)
    best_adv = jnp.where(better[:, None, None, None], x, best_adv)
    best_norm = jnp.where(better, size, best_norm)
    x = jnp.where(adversarial[:, None, None, None],
                  images + beta * (x - images), x)
    return x, best_adv, best_norm

  _, best_adv, best_norm = jax.lax.fori_loop(
      0, steps, conv_layout.canonical_convolutions(body), (start, *best))
  return best_adv, best_norm


def _random_direction(key: jax.Array, shape: tuple[int, ...],
                      norm: str) -> jax.Array:
  """A random perturbation of unit norm (uniform then scaled for L-inf,
  Gaussian for L2, as the authors' code)."""
  if norm == "linf":
    t = jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
  else:
    t = jax.random.normal(key, shape)
  return t / jnp.maximum(common.lp_norm(t, norm), 1e-12)


def fab(logits_fn: common.LogitsFn, images: jax.Array, labels: jax.Array,
        epsilons: jax.Array, keys: jax.Array, *, norm: str = "linf",
        steps: int = 100, restarts: int = 1, targeted: bool = False,
        num_target_classes: int = 9, alpha_max: float = 0.1,
        eta: float = 1.05, beta: float = 0.9) -> common.AttackResult:
  """FAB (or FAB-T) minimal adversarials, scored at each epsilon.

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K].
    images: float32 [B, H, W, 3] in [0, 1].
    labels: int [B] true classes (misclassified examples have norm 0).
    epsilons: float32 [E] radii in `norm`, [0, 1] pixel units (every example
      at every epsilon), or float32 [E, B] (a radius per epsilon and example).
    keys: [B] per-example PRNG keys (random starts of restarts 2, 3, ...).
    norm: "linf" or "l2".
    steps: FAB steps per run.
    restarts: runs per target; the first starts at the image.
    targeted: FAB-T: one run per target class t, linearising the boundary
      between the label and t (any misclassification counts, as AutoAttack).
    num_target_classes: FAB-T's targets, the label's runner-up clean logits
      (capped at K - 1).
    alpha_max: largest weight of the step from the image.
    eta: extrapolation factor of the projection steps (>= 1).
    beta: pull-back factor towards the image after a success.

  Returns:
    An `AttackResult`: `raw` [E, B, H, W, 3] per epsilon the smallest
    adversarial found if its norm is at most the epsilon, else the image;
    `success` where there is one; `min_norm` [B] the smallest adversarial's
    norm (inf where none).
  """
  common.check_norm(norm)
  for name, value, ok, rule in (
      ("steps", steps, steps >= 1, ">= 1"),
      ("restarts", restarts, restarts >= 1, ">= 1"),
      ("num_target_classes", num_target_classes, num_target_classes >= 1,
       ">= 1"),
      ("alpha_max", alpha_max, 0 < alpha_max <= 1, "in (0, 1]"),
      ("eta", eta, eta >= 1, ">= 1"),
      ("beta", beta, 0 < beta <= 1, "in (0, 1]")):
    if not ok:
      raise ParameterError(name, f"must be {rule}, got {value}")
  clean = logits_fn(images)
  num_classes = clean.shape[-1]
  is_label = jax.nn.one_hot(labels, num_classes, dtype=bool)
  if targeted:  # Run r attacks target the r-th largest other logit.
    count = min(num_target_classes, num_classes - 1)
    others = jax.lax.top_k(jnp.where(is_label, -jnp.inf, clean), count)[1]
    others = others.T[:, None, :]  # [T, 1, B]: one boundary per run.
  else:  # One run across every other class.
    others = jnp.arange(num_classes - 1)[:, None]
    others = (others + (others >= labels[None]))[None]  # [1, K - 1, B].
  differences = (jax.nn.one_hot(others, num_classes)
                 - jax.nn.one_hot(labels, num_classes))  # [T, C, B, K].
  misclassified = common.is_adversarial(clean, labels, None)
  best = (images, jnp.where(misclassified, 0.0, jnp.inf))
  run = functools.partial(_fab_run, logits_fn, images, labels, norm=norm,
                          steps=steps, alpha_max=alpha_max, eta=eta, beta=beta)
  best = jax.lax.scan(lambda best, d: (run(d, images, best), None), best,
                      differences)[0]
  eps_rows = common.epsilon_rows(epsilons, labels.shape[0])  # [E, B]
  if restarts == 1:
    raw = jnp.broadcast_to(best[0], eps_rows.shape + images.shape[1:])
    norms = jnp.broadcast_to(best[1], eps_rows.shape)
  else:
    runs = differences.shape[0]
    indices = jnp.arange(runs * (restarts - 1))
    run_keys = jax.vmap(lambda i: jax.vmap(
        lambda k: jax.random.fold_in(k, i))(keys))(indices)  # [T(R-1), B].

    def at_epsilon(eps):  # eps [B].
      def restart(best, index_and_keys):
        index, keys_ = index_and_keys
        radius = 0.5 * jnp.minimum(best[1], eps)
        directions = jax.vmap(lambda k: _random_direction(
            k, images.shape[1:], norm))(keys_)
        start = jnp.clip(images + radius[:, None, None, None] * directions,
                         0.0, 1.0)
        return run(differences[index % runs], start, best), None
      return jax.lax.scan(restart, best, (indices, run_keys))[0]

    raw, norms = jax.vmap(at_epsilon)(eps_rows)  # [E, B, ...], [E, B].
  accepted = norms <= eps_rows
  raw = jnp.where(accepted[..., None, None, None], raw, images)
  result = common.score_epsilons(logits_fn, images, labels, raw, eps_rows,
                                 norm)
  return result._replace(min_norm=jnp.min(norms, axis=0))


fab_t = functools.partial(fab, targeted=True)
