"""Who sees which task, in which order and condition: the study's design.

Every shuffle is a NumPy PCG64 stream seeded from the study's seed and the
SHA-256 digest of a label (an annotator id, or the shuffle's purpose), so it is
the same on every machine and in every Python process (never Python's salted
`hash()`). A permutation is the argsort of the stream's raw 64-bit words:
NumPy keeps bit generators' streams fixed across versions but not
`Generator.permutation`, and the design is recomputed when the judgements are
read back, possibly under a later NumPy.

The overlay design (as in Stock & Cisse's study of explanations beside
adversarial images) is a two-group crossover. The adversarial images are put
in one seeded order, shared by all annotators; an annotator in slot s sees the
image at position p with the explanation overlay iff p + s is even. So each
annotator sees every image in exactly one condition, half of them with the
overlay (counts differ by at most one), and the declared annotators, in slots
0, 1, 0, 1, ... by their index in the declared list, show every image with the
overlay to half of them (counts differ by at most one).

An annotator id that was not declared (a new id typed into the study page) gets
slot `int.from_bytes(sha256(id as UTF-8), "big") % 2`, the low bit of the
digest's last byte (easy to recompute in the page's script): that annotator's
own images stay balanced; across annotators the balance holds in expectation.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Callable, Mapping, Sequence

import numpy as np

from jaxaudit.errors import ParameterError


def _digest(label: str) -> int:
  """SHA-256 of `label` as UTF-8, as a 256-bit integer."""
  return int.from_bytes(hashlib.sha256(label.encode()).digest(), "big")


def _check_seed(seed: int) -> None:
  if (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
      or seed < 0):
    raise ParameterError("seed",
                         f"must be a non-negative integer, got {seed!r}")


def _check_ids(name: str, ids: Sequence[str]) -> None:
  """`ids` must be distinct strings."""
  for i in ids:
    if not isinstance(i, str):
      raise ParameterError(name, f"ids must be strings, got {i!r}")
  if len(set(ids)) != len(ids):
    raise ParameterError(name, "ids must be distinct")


def _permutation(size: int, seed: int, label: str) -> np.ndarray:
  """A permutation of range(size) fixed by `seed` and `label`."""
  bits = np.random.PCG64(np.random.SeedSequence([int(seed), _digest(label)]))
  return np.argsort(bits.random_raw(size), kind="stable")


def task_order(task_ids: list[str], seed: int, annotator: str) -> list[str]:
  """The order in which `annotator` sees the tasks.

  Args:
    task_ids: distinct task ids.
    seed: the study's seed, a non-negative integer.
    annotator: the annotator id (any string).

  Returns:
    `task_ids` shuffled, the same for the same seed and annotator.
  """
  _check_seed(seed)
  _check_ids("task_ids", task_ids)
  if not isinstance(annotator, str):
    raise ParameterError("annotator", f"must be a string, got {annotator!r}")
  order = _permutation(len(task_ids), seed, f"order:{annotator}")
  return [task_ids[i] for i in order]


def annotator_slot(annotator: str, annotators: Sequence[str] = ()) -> int:
  """An annotator's group in the overlay design: 0 or 1.

  Args:
    annotator: the annotator id.
    annotators: the declared annotators, in order.

  Returns:
    The annotator's index in `annotators` mod 2 when declared, else the
    SHA-256 digest of its UTF-8 id (big-endian) mod 2.
  """
  return _slot({a: i % 2 for i, a in enumerate(annotators)}, annotator)


def _slot(slots: Mapping[str, int], annotator: str) -> int:
  """The declared slot, else the digest's low bit."""
  return slots[annotator] if annotator in slots else _digest(annotator) % 2


def _shown_with_overlay(position: int, slots: Mapping[str, int],
                        annotator: str) -> bool:
  """The crossover rule for the image at `position`."""
  return (position + _slot(slots, annotator)) % 2 == 0


def overlay_rules(image_ids: list[str], annotators: list[str],
                  seed: int) -> dict[str, Callable[[str], bool]]:
  """Per image, the rule saying whether an annotator sees it with the overlay.

  The rules also answer for annotators not in `annotators` (their slot comes
  from their id's digest, see the module docstring); the judgements reader
  checks each answer's recorded condition with them.

  Args:
    image_ids: distinct ids of the adversarial tasks.
    annotators: distinct declared annotator ids, in order.
    seed: the study's seed, a non-negative integer.

  Returns:
    image id -> (annotator id -> shown with the explanation overlay), in the
    order of `image_ids`.
  """
  _check_seed(seed)
  _check_ids("image_ids", image_ids)
  _check_ids("annotators", annotators)
  slots = {a: i % 2 for i, a in enumerate(annotators)}
  positions = np.argsort(_permutation(len(image_ids), seed, "overlay"))
  return {image: functools.partial(_shown_with_overlay, position, slots)
          for image, position in zip(image_ids, positions.tolist())}


def overlay_conditions(image_ids: list[str], annotators: list[str],
                       seed: int) -> dict[str, dict[str, bool]]:
  """The balanced overlay design for the declared annotators.

  Args:
    image_ids: distinct ids of the adversarial tasks.
    annotators: distinct annotator ids, in order (their slots alternate).
    seed: the study's seed, a non-negative integer.

  Returns:
    annotator -> image id -> shown with the explanation overlay.
  """
  rules = overlay_rules(image_ids, annotators, seed)
  return {a: {image: rule(a) for image, rule in rules.items()}
          for a in annotators}


def annotator_conditions(image_ids: list[str], annotator: str, seed: int,
                         annotators: Sequence[str] = ()) -> dict[str, bool]:
  """One annotator's overlay conditions, declared or not.

  Args:
    image_ids: distinct ids of the adversarial tasks.
    annotator: the annotator id; need not be in `annotators`.
    seed: the study's seed, a non-negative integer.
    annotators: the declared annotators, in order.

  Returns:
    image id -> shown with the explanation overlay; equal to
    `overlay_conditions(image_ids, annotators, seed)[annotator]` for a
    declared annotator.
  """
  rules = overlay_rules(image_ids, list(annotators), seed)
  return {image: rule(annotator) for image, rule in rules.items()}
