"""A finished run's arrays as the study page's judgement tasks.

Three kinds, as in Stock & Cisse's and Carter et al.'s studies: each top-1
error (which of the model's top-5 labels and the given label are correct),
each successful adversarial (is its label acceptable, shown beside an
explanation overlay in half the cases), and pixel subsets (which class a
person sees in the top-ranked SIS pixels, and in as many random pixels as the
control).

Subset tasks must not give their condition away: their ids are SHA-256 digests
of a caller's key, the example id and the condition, and they are listed in
digest order; `subset_tasks` returns the condition of each id separately, to be
kept out of the page. Every random choice (the control's pixels, the order of
the class choices) is a NumPy PCG64 stream seeded from the study's seed and
the example id, read as raw 64-bit words, so it is the same on every machine
and NumPy version. Pure NumPy: no model, no JAX.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import numpy as np

from jaxaudit.errors import ParameterError
from jaxaudit.study.page import Task

# Up to this many classes a subset task offers them all; above, the model's
# top-5 and the label.
MAX_ALL_CHOICES = 10
SIS, RANDOM = "sis", "random"
_OVERLAY_ALPHA = 0.6  # Opacity of the heat map at its strongest.


def _check_limit(limit: int) -> None:
  if (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
      or limit < 0):
    raise ParameterError("limit", f"must be a non-negative integer, got "
                                  f"{limit!r}")


def _stream(seed: int, example_id: int, purpose: str) -> np.random.PCG64:
  """A bit stream fixed by the seed, the example and the purpose."""
  digest = int.from_bytes(hashlib.sha256(purpose.encode()).digest(), "big")
  return np.random.PCG64(np.random.SeedSequence(
      [int(seed), int(example_id), digest]))


def _permutation(size: int, seed: int, example_id: int,
                 purpose: str) -> np.ndarray:
  """A permutation of range(size), the same under any NumPy version."""
  words = _stream(seed, example_id, purpose).random_raw(size)
  return np.argsort(words, kind="stable")


def error_tasks(ids: np.ndarray, images: np.ndarray, labels: np.ndarray,
                top5: np.ndarray, class_names: Sequence[str], *,
                limit: int) -> list[Task]:
  """One "error" task per top-1 error.

  Args:
    ids: int [N] example ids.
    images: uint8 [N, H, W, 3] the images.
    labels: int [N] given labels, -1 = unknown (never an error).
    top5: int [N, T] the model's top classes, best first (T <= 5).
    class_names: K names.
    limit: at most this many tasks, the first errors in the given order.

  Returns:
    Tasks with id "error-<example id>" and candidates the top-5 classes then
    the label, each once, as (class index, name).
  """
  _check_limit(limit)
  labels, top5 = np.asarray(labels), np.asarray(top5)
  wrong = np.flatnonzero((labels >= 0) & (top5[:, 0] != labels))[:limit]
  tasks = []
  for row in wrong:
    classes = dict.fromkeys([int(c) for c in top5[row]] + [int(labels[row])])
    tasks.append(Task(id=f"error-{int(ids[row])}", kind="error",
                      image=images[row],
                      candidates=[(c, class_names[c]) for c in classes]))
  return tasks


def heat_colors(values: np.ndarray) -> np.ndarray:
  """A black-red-yellow-white colormap.

  Args:
    values: float [...] in [0, 1].

  Returns:
    float32 [..., 3] RGB in [0, 1].
  """
  t = np.clip(np.asarray(values, np.float32), 0.0, 1.0)[..., None]
  return np.clip(3.0 * t - np.array([0.0, 1.0, 2.0], np.float32), 0.0, 1.0)


def overlay(image: np.ndarray, heat_map: np.ndarray) -> np.ndarray:
  """A heat map blended over an image, more opaque where it is stronger.

  Args:
    image: uint8 [H, W, 3].
    heat_map: float [H, W], any sign; its magnitude is scaled by its 99th
      percentile (a few extreme pixels would wash out the rest).

  Returns:
    uint8 [H, W, 3].
  """
  strength = np.abs(np.nan_to_num(np.asarray(heat_map, np.float32)))
  scale = float(np.percentile(strength, 99))
  strength = np.clip(strength / scale, 0.0, 1.0) if scale > 0 else strength
  alpha = _OVERLAY_ALPHA * strength[..., None]
  blended = ((1.0 - alpha) * image.astype(np.float32)
             + alpha * 255.0 * heat_colors(strength))
  return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def adversarial_tasks(ids: np.ndarray, adversarials: np.ndarray,
                      adv_class: np.ndarray, success: np.ndarray,
                      maps: np.ndarray, class_names: Sequence[str], *,
                      limit: int) -> list[Task]:
  """One "adversarial" task per successful adversarial.

  Args:
    ids: int [N] example ids.
    adversarials: uint8 [N, H, W, 3] the adversarial images.
    adv_class: int [N] the model's class for each adversarial.
    success: bool [N] the attack fooled the model.
    maps: float [N, H, W] explanations of the adversarials.
    class_names: K names.
    limit: at most this many tasks, the first successes in the given order.

  Returns:
    Tasks with id "adversarial-<example id>", the adversarial class's name
    and the explanation overlaid on the adversarial image.
  """
  _check_limit(limit)
  rows = np.flatnonzero(np.asarray(success, bool))[:limit]
  return [Task(id=f"adversarial-{int(ids[r])}", kind="adversarial",
               image=adversarials[r],
               adversarial_class=class_names[int(adv_class[r])],
               overlay=overlay(adversarials[r], maps[r])) for r in rows]


def kept_pixels(ranks: np.ndarray, count: int, block_size: int) -> np.ndarray:
  """The pixels of the `count` top-ranked features.

  Args:
    ranks: int [F] each feature's rank (0 = most important), F = G * G over a
      G x G grid of `block_size` x `block_size` blocks.
    count: features kept.
    block_size: feature side in pixels.

  Returns:
    bool [G * block_size, G * block_size].
  """
  side = math.isqrt(len(ranks))
  grid = (np.asarray(ranks) < count).reshape(side, side)
  return np.repeat(np.repeat(grid, block_size, 0), block_size, 1)


def _subset_choices(example_id: int, num_classes: int, class_names, seed: int,
                    top5: np.ndarray | None, label: int
                    ) -> list[tuple[int, str]]:
  if num_classes <= MAX_ALL_CHOICES:
    classes = list(range(num_classes))
  else:
    classes = list(dict.fromkeys([int(c) for c in top5]
                                 + ([label] if label >= 0 else [])))
  order = _permutation(len(classes), seed, example_id, "choices")
  return [(classes[i], class_names[classes[i]]) for i in order]


def subset_tasks(ids: np.ndarray, images: np.ndarray, ranks: np.ndarray,
                 class_names: Sequence[str], *, block_size: int,
                 fraction: float, baseline: np.ndarray, seed: int, key: str,
                 limit: int, top5: np.ndarray | None = None,
                 labels: np.ndarray | None = None
                 ) -> tuple[list[Task], dict[str, tuple[int, str]]]:
  """Two "subset" tasks per image: its SIS pixels and as many random ones.

  Args:
    ids: int [N] example ids.
    images: uint8 [N, H, W, 3] the images.
    ranks: int [N, F] each feature's rank (0 = most important), as the sis
      stage's `sis.ranks`.
    class_names: K names.
    block_size: feature side in pixels (H = sqrt(F) * block_size).
    fraction: share of features kept, as `config.sis.subset_fractions`
      (ceil(fraction * F), at least one, as `sis.subsets.subset_counts`).
    baseline: uint8 [3] the pixel that replaces the others.
    seed: the study's seed (the random pixels, the choices' order).
    key: a string not shown on the page; the task ids are digests of it.
    limit: at most this many images (2 * limit tasks), the first given.
    top5: int [N, T] the model's top classes; needed above 10 classes.
    labels: int [N] given labels (-1 = unknown); used above 10 classes.

  Returns:
    (tasks sorted by id, task id -> (example id, "sis" or "random")). Each
    task's choices are all classes up to 10 classes, else the top-5 and the
    label, in an order fixed by the seed and the example.
  """
  _check_limit(limit)
  ranks = np.asarray(ranks)
  num_features, num_classes = ranks.shape[1], len(class_names)
  if not 0.0 < fraction <= 1.0:
    raise ParameterError("fraction", f"must be in (0, 1], got {fraction!r}")
  if num_classes > MAX_ALL_CHOICES and top5 is None:
    raise ParameterError("top5", f"needed with more than {MAX_ALL_CHOICES} "
                                 "classes")
  count = max(1, math.ceil(fraction * num_features - 1e-9))
  baseline = np.asarray(baseline, np.uint8)
  tasks, hidden = [], {}
  for row in range(min(limit, len(ids))):
    example = int(ids[row])
    label = -1 if labels is None else int(labels[row])
    choices = _subset_choices(example, num_classes, class_names, seed,
                              None if top5 is None else top5[row], label)
    random_ranks = np.argsort(_permutation(num_features, seed, example,
                                           "random subset"))
    for variant, feature_ranks in ((SIS, ranks[row]), (RANDOM, random_ranks)):
      kept = kept_pixels(feature_ranks, count, block_size)
      image = np.where(kept[..., None], images[row], baseline)
      task_id = "subset-" + hashlib.sha256(
          f"{key}\n{example}\n{variant}".encode()).hexdigest()[:20]
      tasks.append(Task(id=task_id, kind="subset", image=image,
                        candidates=choices))
      hidden[task_id] = (example, variant)
  return sorted(tasks, key=lambda t: t.id), hidden
