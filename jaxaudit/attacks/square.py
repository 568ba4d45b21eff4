"""Square Attack (Andriushchenko et al., ECCV 2020), L-inf and L2: black-box.

A random search that uses only the model's outputs, so it cannot be fooled by
masked gradients; AutoAttack runs it last for that reason. Each query changes
one square window of side s (s^2 ~ p * H * W, p annealed from `p_init` by the
paper's piecewise schedule on the query count, as AutoAttack runs it with
`resc_schedule=False`; `rescale_schedule` stretches it to `queries`) and keeps
the change when it lowers the margin loss (label logit minus the best other,
< 0 once adversarial):

- L-inf: the window's perturbation becomes +-eps, one sign per channel; the
  start is vertical stripes of +-eps.
- L2: the window gets a "pseudo-Gaussian" pattern (two halves of concentric
  squares, opposite signs) plus its old perturbation, rescaled per channel so
  the channel's mass in both windows (the second is zeroed) moves into it; the
  whole perturbation is then rescaled to norm eps. The start is a grid of such
  patterns.

Windows are drawn per example from the example's key (the authors' code draws
one window per batch), so results do not depend on the batch and each example
may have its own radius. A window's corner is drawn from all H - s + 1 rows
and W - s + 1 columns, because the authors' code draws it from the first
H - s and W - s only, an off-by-one that for s = 1 never changes the last row
and column after the start. The search is a `lax.while_loop` that stops once
every example is fooled; windows are masks over the full image, so a window's
size can change inside the loop.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxaudit.attacks import common
from jaxaudit.errors import ParameterError

# The paper's p schedule on 10,000 queries: p_init / 2^k after these many.
_SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_TINY = 1e-12


def fraction(query: jax.Array, queries: int, p_init: float,
             rescale: bool = False) -> jax.Array:
  """The share p of pixels the `query`-th change (from 0) covers: `p_init`
  halved once past each count of the paper's schedule, on the query itself
  (AutoAttack's use), or if `rescale` on floor(query * 10,000 / queries)."""
  if rescale:  # floor(q * 10000 / queries) > t iff q 10000 >= (t + 1) queries.
    thresholds = [-(-(t + 1) * queries // 10000) for t in _SCHEDULE]
  else:
    thresholds = [t + 1 for t in _SCHEDULE]
  halvings = jnp.sum(query >= jnp.asarray(thresholds))
  return p_init / (2.0 ** halvings)


def _window(shape: tuple[int, int], top: jax.Array, left: jax.Array,
            size: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Rows and columns relative to a window [H, W] and its bool mask."""
  rows = jnp.arange(shape[0])[:, None] - top
  cols = jnp.arange(shape[1])[None, :] - left
  inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
  return rows, cols, inside


def _rectangle(rows: jax.Array, cols: jax.Array, height: jax.Array,
               width: jax.Array, inside: jax.Array) -> jax.Array:
  """Concentric squares over a height x width rectangle, unit L2 norm [H, W]:
  the value at distance m (Chebyshev, from the centre (height // 2,
  width // 2)) is sum_{k=m}^{K-1} 1 / (k + 1)^2, K = max of the two
  centres + 1."""
  rings = jnp.maximum(jnp.abs(rows - height // 2), jnp.abs(cols - width // 2))
  count = jnp.maximum(height // 2, width // 2) + 1
  ks = jnp.arange(1, max(rows.shape) + 2, dtype=jnp.float32)
  tail = jnp.cumsum(1.0 / ks[::-1] ** 2)[::-1]  # tail[m] = sum_{k>=m} 1/(k+1)^2
  tail = jnp.concatenate([tail, jnp.zeros(1)])
  values = jnp.where(inside, tail[jnp.minimum(rings, tail.shape[0] - 1)]
                     - tail[jnp.minimum(count, tail.shape[0] - 1)], 0.0)
  return values / jnp.maximum(jnp.sqrt(jnp.sum(values ** 2)), _TINY)


def pattern(shape: tuple[int, int], top: jax.Array, left: jax.Array,
            size: jax.Array, transpose: jax.Array) -> jax.Array:
  """The L2 update pattern on one size x size window of an [H, W] image, zero
  outside it, unit L2 norm: concentric squares on the window's top half
  minus the same on its bottom half (left and right halves if `transpose`)."""
  rows, cols, inside = _window(shape, top, left, size)
  rows, cols = jnp.broadcast_arrays(rows, cols)
  rows, cols = (jnp.where(transpose, cols, rows),
                jnp.where(transpose, rows, cols))
  half = size // 2
  top_half = inside & (rows < half)
  bottom_half = inside & (rows >= half)
  upper = _rectangle(rows, cols, half, size, top_half)
  lower = _rectangle(rows - half, cols, size - half, size, bottom_half)
  values = upper - lower
  return values / jnp.maximum(jnp.sqrt(jnp.sum(values ** 2)), _TINY)


def _margin(logits_fn, x, labels):
  """The margin loss [B]: label logit minus best other (< 0: adversarial)."""
  return -common.margin(logits_fn(x), labels)


def _sign(key, channels):
  return jnp.where(jax.random.bernoulli(key, 0.5, (channels,)), 1.0, -1.0)


def _linf_start(key, image, eps):
  """Vertical stripes: one +-eps per column and channel, [H, W, C]."""
  height, width, channels = image.shape
  signs = jnp.where(jax.random.bernoulli(key, 0.5, (1, width, channels)),
                    1.0, -1.0)
  return jnp.clip(image + eps * signs, 0.0, 1.0)


def _l2_start(key, image, eps):
  """A grid of L2 patterns of side H // 5, random sign per tile and channel,
  rescaled to norm eps."""
  height, width, channels = image.shape
  side = max(height // 5, 1)
  margin_ = (height - side * 5) // 2
  tops = margin_ + side * jnp.arange(height // side)
  lefts = margin_ + side * jnp.arange(width // side)
  tops, lefts = (a.ravel() for a in jnp.meshgrid(tops, lefts, indexing="ij"))
  keys = jax.random.split(key, (tops.shape[0], 2))

  def tile(top, left, tile_keys):
    flip = jax.random.bernoulli(tile_keys[0], 0.5)
    return (pattern((height, width), top, left, jnp.int32(side), flip)[..., None]
            * _sign(tile_keys[1], channels))

  delta = jnp.sum(jax.vmap(tile)(tops, lefts, keys), axis=0)
  delta = delta / jnp.maximum(jnp.linalg.norm(delta), _TINY)
  return jnp.clip(image + eps * delta, 0.0, 1.0)


def _linf_proposal(key, image, best, eps, side):
  """`best` [H, W, C] with one random window set to +-eps per channel."""
  height, width, channels = image.shape
  top_key, left_key, sign_key = jax.random.split(key, 3)
  top = jax.random.randint(top_key, (), 0, height - side + 1)
  left = jax.random.randint(left_key, (), 0, width - side + 1)
  inside = _window((height, width), top, left, side)[2][..., None]
  delta = jnp.where(inside, eps * _sign(sign_key, channels), best - image)
  return jnp.clip(image + delta, 0.0, 1.0)


def _l2_proposal(key, image, best, eps, side):
  """`best` [H, W, C] with a second window's mass moved into a first one,
  with a fresh pattern added there, then rescaled to norm eps."""
  height, width, channels = image.shape
  keys = jax.random.split(key, 6)
  spots = [jax.random.randint(k, (), 0, height - side + 1) if i % 2 == 0
           else jax.random.randint(k, (), 0, width - side + 1)
           for i, k in enumerate(keys[:4])]
  first = _window((height, width), spots[0], spots[1], side)[2][..., None]
  second = _window((height, width), spots[2], spots[3], side)[2][..., None]
  delta = best - image
  per_channel = lambda v: jnp.sqrt(jnp.sum(v ** 2, axis=(0, 1)))  # [C]
  old = jnp.where(first, delta, 0.0)
  old = old / (per_channel(old) + _TINY)
  flip = jax.random.bernoulli(keys[4], 0.5)
  fresh = (pattern((height, width), spots[0], spots[1], side, flip)[..., None]
           * _sign(keys[5], channels))
  new = fresh + old
  image_norm = jnp.linalg.norm(delta)
  windows_norm = per_channel(jnp.where(first | second, delta, 0.0))  # [C]
  room = jnp.sqrt(jnp.maximum(eps ** 2 - image_norm ** 2, 0.0) / channels
                  + windows_norm ** 2)
  new = new / (per_channel(new) + _TINY) * room
  delta = jnp.where(first, new, jnp.where(second, 0.0, delta))
  delta = eps * delta / jnp.maximum(jnp.linalg.norm(delta), _TINY)
  return jnp.clip(image + delta, 0.0, 1.0)


def _side(p: jax.Array, pixels: int, norm: str, limit: int) -> jax.Array:
  """The window side for share p of `pixels`, at most `limit` (for L2 first
  made odd and >= 3, as the authors', so only `limit` itself can be even)."""
  side = jnp.round(jnp.sqrt(p * pixels)).astype(jnp.int32)
  if norm == "linf":
    return jnp.clip(side, 1, limit)
  side = jnp.maximum(side, 3)
  side = side + (side % 2 == 0)
  return jnp.minimum(side, limit)


def _square_run(logits_fn, images, labels, eps, keys, *, norm, queries,
                p_init, rescale_schedule):
  """One search at radii `eps` [B] -> (points [B, H, W, C], margin loss
  [B])."""
  height, width = images.shape[1:3]
  start = _linf_start if norm == "linf" else _l2_start
  propose = _linf_proposal if norm == "linf" else _l2_proposal
  init_keys, search_keys = jnp.moveaxis(jax.vmap(jax.random.split)(keys), 1, 0)
  best = jax.vmap(start)(init_keys, images, eps)
  loss = _margin(logits_fn, best, labels)

  def body(carry):
    query, best, loss = carry
    side = _side(fraction(query, queries, p_init, rescale_schedule),
                 height * width, norm, min(height, width))
    step_keys = jax.vmap(lambda k: jax.random.fold_in(k, query))(search_keys)
    candidate = jax.vmap(propose, in_axes=(0, 0, 0, 0, None))(
        step_keys, images, best, eps, side)
    candidate_loss = _margin(logits_fn, candidate, labels)
    take = (loss > 0) & (candidate_loss < loss)
    return (query + 1, jnp.where(take[:, None, None, None], candidate, best),
            jnp.where(take, candidate_loss, loss))

  _, best, loss = jax.lax.while_loop(
      lambda c: (c[0] < queries) & jnp.any(c[2] > 0), body,
      (jnp.int32(0), best, loss))
  return best, loss


def square(logits_fn: common.LogitsFn, images: jax.Array, labels: jax.Array,
           epsilons: jax.Array, keys: jax.Array, *, norm: str = "linf",
           queries: int = 5000, p_init: float = 0.8, restarts: int = 1,
           rescale_schedule: bool = False) -> common.AttackResult:
  """Square Attack at every epsilon.

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K] (only outputs are used).
    images: float32 [B, H, W, 3] in [0, 1].
    labels: int [B] true classes.
    epsilons: float [E] radii in `norm`, [0, 1] pixel units (every example at
      every epsilon), or float [E, B] (a radius per epsilon and example).
    keys: [B] per-example PRNG keys (start, windows and signs).
    norm: "linf" or "l2".
    queries: model queries per run after the first (AutoAttack: 5,000).
    p_init: the share of pixels the first changes cover (AutoAttack: 0.8).
    restarts: independent runs; later ones only matter where earlier failed.
    rescale_schedule: stretch p's schedule from 10,000 queries to `queries`
      (the authors' SquareAttack default; AutoAttack turns it off).

  Returns:
    An `AttackResult` with E epsilons; `raw` is, per epsilon, the first
    run's adversarial, else the lowest-margin point.
  """
  common.check_norm(norm)
  if queries < 1:
    raise ParameterError("queries", f"must be >= 1, got {queries}")
  if restarts < 1:
    raise ParameterError("restarts", f"must be >= 1, got {restarts}")
  if not 0.0 < p_init <= 1.0:
    raise ParameterError("p_init", f"must be in (0, 1], got {p_init}")
  run = functools.partial(_square_run, logits_fn, images, labels, norm=norm,
                          queries=queries, p_init=p_init,
                          rescale_schedule=rescale_schedule)
  run_keys = jax.vmap(lambda r: jax.vmap(
      lambda k: jax.random.fold_in(k, r))(keys))(jnp.arange(restarts))
  eps_rows = common.epsilon_rows(epsilons, labels.shape[0])  # [E, B]
  eps_count = eps_rows.shape[0]

  def scan_body(carry, restart_keys):
    best, best_loss = carry
    x, loss = jax.lax.cond(
        jnp.all(best_loss <= 0), lambda: (best, best_loss),
        lambda: jax.vmap(lambda e: run(e, restart_keys))(eps_rows))
    take = (best_loss > 0) & (loss < best_loss)
    return (jnp.where(take[..., None, None, None], x, best),
            jnp.where(take, loss, best_loss)), None

  init = (jnp.broadcast_to(images, (eps_count,) + images.shape),
          jnp.full((eps_count,) + labels.shape, jnp.inf))
  (raw, _), _ = jax.lax.scan(scan_body, init, run_keys)
  return common.score_epsilons(logits_fn, images, labels, raw, eps_rows, norm)
