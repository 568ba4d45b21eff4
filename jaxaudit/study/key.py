"""The study's key: what each task of a study page shows, kept off the page.

`python -m jaxaudit.annotate` writes it beside the page as `tasks.json`:

  {"format": "jaxaudit-study-tasks/1", "run_id": "...", "seed": 0,
   "annotators": ["a", "b"],
   "sources": {"adversarial": {"attack": "pgd_linf", "epsilon": 0.0314,
                               "epsilon_label": "8/255",
                               "overlay_method": "saliency"},
               "subset": {"fraction": 0.05}},
   "tasks": [{"id": "...", "kind": "error", "example_id": 3, "variant": null,
              "candidates": [[5, "five"], [3, "three"]],
              "adversarial_class": ""}, ...]}

Tasks are listed in the page's order (the overlay design depends on it). A
subset task's variant says whether it shows the image's SIS pixels ("sis") or
as many random ones ("random"), which the page must not reveal; error and
adversarial tasks have none. `sources` names the attack, epsilon and
explanation of the adversarial tasks and the subset fraction of the subset
tasks (null where the study has no such tasks).

The key is read back when judgements are scored and may have been edited, so
the reader is as strict as the judgements reader (`judgements.read_json`): any
problem raises `JudgementsError` naming the file.
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

from jaxaudit.study import design
from jaxaudit.study import judgements
from jaxaudit.study.judgements import Checker, show

FORMAT = "jaxaudit-study-tasks/1"
MAX_BYTES = 64 * 1024 * 1024
SIS, RANDOM = "sis", "random"
_TOP_FIELDS = ("format", "run_id", "seed", "annotators", "sources", "tasks")
_TASK_FIELDS = ("id", "kind", "example_id", "variant", "candidates",
                "adversarial_class")
_ADVERSARIAL_FIELDS = ("attack", "epsilon", "epsilon_label", "overlay_method")


class KeyTask(NamedTuple):
  """What one task shows.

  Attributes:
    kind: "error", "adversarial" or "subset".
    example_id: the run's example the task shows.
    variant: "subset": "sis" or "random"; else None.
    candidates: (class index, name) pairs shown as choices ("error",
      "subset"); empty for "adversarial".
    adversarial_class: "adversarial": the adversarial label's name.
  """
  kind: str
  example_id: int
  variant: str | None
  candidates: tuple[tuple[int, str], ...]
  adversarial_class: str = ""


class AdversarialSource(NamedTuple):
  """Where the adversarial tasks come from.

  Attributes:
    attack: the attack stage's attack name.
    epsilon: the epsilon of the adversarials, on [0, 1] pixels (as the
      attack stage's records: 32/255 for "32/255").
    epsilon_label: its label in the attack stage's summary.
    overlay_method: the explanation method of the overlays.
  """
  attack: str
  epsilon: float
  epsilon_label: str
  overlay_method: str


class StudyKey(NamedTuple):
  """A study's key.

  Attributes:
    run_id: the run the study belongs to.
    seed: the study's seed.
    annotators: the declared annotator ids, in order.
    tasks: task id -> `KeyTask`, in the page's order.
    adversarial: where the adversarial tasks come from, or None.
    subset_fraction: the share of features the subset tasks keep, or None.
  """
  run_id: str
  seed: int
  annotators: tuple[str, ...]
  tasks: dict[str, KeyTask]
  adversarial: AdversarialSource | None = None
  subset_fraction: float | None = None

  def ids(self, kind: str, variant: str | None = None) -> list[str]:
    """The ids of the tasks of `kind` (and `variant`), in the page's order."""
    return [i for i, t in self.tasks.items()
            if t.kind == kind and (variant is None or t.variant == variant)]


def to_json(key: StudyKey) -> dict[str, Any]:
  """The key as the JSON value `load` reads back."""
  adversarial = (None if key.adversarial is None
                 else dict(key.adversarial._asdict()))
  subset = (None if key.subset_fraction is None
            else {"fraction": key.subset_fraction})
  return {"format": FORMAT, "run_id": key.run_id, "seed": key.seed,
          "annotators": list(key.annotators),
          "sources": {"adversarial": adversarial, "subset": subset},
          "tasks": [{"id": i, "kind": t.kind, "example_id": t.example_id,
                     "variant": t.variant,
                     "candidates": [[c, n] for c, n in t.candidates],
                     "adversarial_class": t.adversarial_class}
                    for i, t in key.tasks.items()]}


def task_specs(key: StudyKey) -> dict[str, judgements.TaskSpec]:
  """What `judgements.load` needs to check answers to the key's page.

  Returns:
    task id -> `judgements.TaskSpec` with the candidates shown and, for the
    adversarial tasks, the overlay rule of the design (over the adversarial
    task ids in the page's order, as the page computed them).
  """
  rules = design.overlay_rules(key.ids("adversarial"), list(key.annotators),
                               key.seed)
  return {i: judgements.TaskSpec(t.kind, frozenset(c for c, _ in t.candidates),
                                 rules.get(i))
          for i, t in key.tasks.items()}


def _integer(check: Checker, value: Any, name: str, where: str) -> int:
  check.typed(value, int, name, where)
  if value < 0:
    check.fail(where, f"{name} is negative")
  return value


def _string(check: Checker, value: Any, name: str, where: str) -> str:
  return check.typed(value, str, name, where)


def _adversarial_source(check: Checker, value: Any) -> AdversarialSource | None:
  where = "sources.adversarial"
  if value is None:
    return None
  check.typed(value, dict, "sources.adversarial", "")
  check.fields(value, _ADVERSARIAL_FIELDS, where)
  epsilon = value["epsilon"]
  if type(epsilon) is int:
    epsilon = float(epsilon)
  check.typed(epsilon, float, "epsilon", where)
  if not math.isfinite(epsilon) or epsilon < 0:
    check.fail(where, f"epsilon {epsilon} is not a finite non-negative number")
  return AdversarialSource(_string(check, value["attack"], "attack", where),
                           epsilon,
                           _string(check, value["epsilon_label"],
                                   "epsilon_label", where),
                           _string(check, value["overlay_method"],
                                   "overlay_method", where))


def _subset_fraction(check: Checker, value: Any) -> float | None:
  where = "sources.subset"
  if value is None:
    return None
  check.typed(value, dict, "sources.subset", "")
  check.fields(value, ("fraction",), where)
  fraction = value["fraction"]
  if type(fraction) is int:
    fraction = float(fraction)
  check.typed(fraction, float, "fraction", where)
  if not 0.0 < fraction <= 1.0:
    check.fail(where, f"fraction {fraction} is not in (0, 1]")
  return fraction


def _candidates(check: Checker, value: Any, where: str
                ) -> tuple[tuple[int, str], ...]:
  check.typed(value, list, "candidates", where)
  pairs = []
  for j, pair in enumerate(value):
    name = f"candidates[{j}]"
    check.typed(pair, list, name, where)
    if len(pair) != 2:
      check.fail(where, f"{name} is not [class index, name]")
    pairs.append((_integer(check, pair[0], name, where),
                  _string(check, pair[1], name, where)))
  if len({c for c, _ in pairs}) != len(pairs):
    check.fail(where, "candidates repeat a class")
  return tuple(pairs)


def _task(check: Checker, row: Any, where: str) -> tuple[str, KeyTask]:
  check.typed(row, dict, "the task", where)
  check.fields(row, _TASK_FIELDS, where)
  task_id = _string(check, row["id"], "id", where)
  kind = _string(check, row["kind"], "kind", where)
  if kind not in judgements.KINDS:
    check.fail(where, f"unknown kind {show(kind)}")
  example = _integer(check, row["example_id"], "example_id", where)
  variant = row["variant"]
  if kind == "subset":
    if variant not in (SIS, RANDOM):
      check.fail(where, f"a subset task's variant is {SIS!r} or {RANDOM!r}")
  elif variant is not None:
    check.fail(where, f"a {kind} task has no variant")
  candidates = _candidates(check, row["candidates"], where)
  name = _string(check, row["adversarial_class"], "adversarial_class", where)
  if (kind == "adversarial") != bool(name):
    check.fail(where, "an adversarial task, and only it, names its class")
  if (kind == "adversarial") == bool(candidates):
    check.fail(where, "error and subset tasks, and only they, have "
                      "candidates")
  return task_id, KeyTask(kind, example, variant, candidates, name)


def load(path_or_bytes: str | os.PathLike | bytes, *,
         source: str | None = None, max_bytes: int = MAX_BYTES) -> StudyKey:
  """Reads and checks a study key.

  Args:
    path_or_bytes: a local path, or the file's bytes.
    source: the name messages give the file; default: the path, or
      "<study key bytes>".
    max_bytes: files larger than this are refused unread.

  Returns:
    The `StudyKey`.

  Raises:
    JudgementsError: naming the file: unreadable, too large, not JSON, not a
      study key, or with a malformed field.
  """
  source = judgements.source_name(path_or_bytes, source, "<study key bytes>")
  check = Checker(source)
  top = judgements.read_json(path_or_bytes, source, max_bytes)
  if not isinstance(top, dict) or top.get("format") != FORMAT:
    check.fail("", f"not a study key (format {FORMAT!r})")
  check.fields(top, _TOP_FIELDS, "")
  run_id = _string(check, top["run_id"], "run_id", "")
  seed = _integer(check, top["seed"], "seed", "")
  annotators = check.typed(top["annotators"], list, "annotators", "")
  for i, a in enumerate(annotators):
    _string(check, a, f"annotators[{i}]", "")
  if len(set(annotators)) != len(annotators):
    check.fail("", "annotators repeat an id")
  sources = check.typed(top["sources"], dict, "sources", "")
  check.fields(sources, ("adversarial", "subset"), "sources")
  tasks = {}
  for i, row in enumerate(check.typed(top["tasks"], list, "tasks", "")):
    task_id, task = _task(check, row, f"tasks[{i}]")
    if task_id in tasks:
      check.fail(f"tasks[{i}]", f"repeats the task id {show(task_id)}")
    tasks[task_id] = task
  key = StudyKey(run_id, seed, tuple(annotators), tasks,
                 _adversarial_source(check, sources["adversarial"]),
                 _subset_fraction(check, sources["subset"]))
  for kind, present in (("adversarial", key.adversarial is not None),
                        ("subset", key.subset_fraction is not None)):
    if bool(key.ids(kind)) != present:
      check.fail("sources", f"names the {kind} tasks' source iff there are "
                            f"{kind} tasks")
  return key
