"""The judgements file people download from the study page, and its reader.

A file is UTF-8 JSON:

  {"format": "jaxaudit-judgements/1", "run_id": "...", "annotator": "...",
   "answers": [
     {"task": "...", "kind": "error", "correct": [3, 17]},
     {"task": "...", "kind": "adversarial", "acceptable": true,
      "overlay": false},
     {"task": "...", "kind": "subset", "seen": 5}]}

`annotator` is 1-64 printable characters. An "error" answer lists the class
indices the person marks correct among those shown (possibly none); an
"adversarial" answer says whether the adversarial label is acceptable and in
which condition the image was shown (with the explanation overlay or not); a
"subset" answer names the class seen in the pixel subset, or null for none. A
file may answer only some of the run's tasks (an unfinished session).

The files come from outside, so the reader is strict and bounded: at most
`MAX_BYTES` are read (the size is checked before the bytes are), objects may
not repeat a key, NaN and Infinity are refused, every field must be present
with its exact JSON type (true is not a number) and no other field may appear,
and every answer must fit the run's tasks and the overlay design. Any problem
raises `JudgementsError` with a one-line message naming the file and the
problem; nothing of a refused file is returned.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, NamedTuple, NoReturn, Sequence

from jaxaudit.errors import JudgementsError

FORMAT = "jaxaudit-judgements/1"
MAX_BYTES = 10 * 1024 * 1024
MAX_ANNOTATOR_CHARS = 64
KINDS = ("error", "adversarial", "subset")
_TOP_FIELDS = ("format", "run_id", "annotator", "answers")
_ANSWER_FIELDS = {"error": ("task", "kind", "correct"),
                  "adversarial": ("task", "kind", "acceptable", "overlay"),
                  "subset": ("task", "kind", "seen")}
_JSON_TYPES = {type(None): "null", bool: "a boolean", int: "an integer",
               float: "a number", str: "a string", list: "an array",
               dict: "an object"}


class TaskSpec(NamedTuple):
  """What an answer to one task may say.

  Attributes:
    kind: "error", "adversarial" or "subset".
    candidates: the class indices shown: those an "error" answer may mark
      correct, or a "subset" answer may name as seen. Unused for
      "adversarial".
    overlay: "adversarial" only: annotator id -> whether the design shows the
      image to that annotator with the explanation overlay (one of
      `design.overlay_rules`); None leaves the condition unchecked.
  """
  kind: str
  candidates: frozenset[int] = frozenset()
  overlay: Callable[[str], bool] | None = None


class Adversarial(NamedTuple):
  """One answer to an adversarial task.

  Attributes:
    acceptable: the adversarial label is acceptable for the image.
    overlay: the image was shown with the explanation overlay.
  """
  acceptable: bool
  overlay: bool


class Judgements(NamedTuple):
  """One annotator's answers, checked against the run's tasks.

  Attributes:
    source: the file's path (or the name given for bytes).
    run_id: the run the answers belong to.
    annotator: the annotator id.
    errors: "error" task id -> class indices marked correct, ascending.
    adversarial: "adversarial" task id -> `Adversarial`.
    subsets: "subset" task id -> class index seen, or None for none.
  """
  source: str
  run_id: str
  annotator: str
  errors: dict[str, tuple[int, ...]]
  adversarial: dict[str, Adversarial]
  subsets: dict[str, int | None]


class _Refused(ValueError):
  """A JSON construct the format refuses, met while decoding."""


def show(value: str) -> str:
  """A string's repr, shortened to keep messages short."""
  text = repr(value)
  return text if len(text) <= 48 else text[:44] + "...'"


def _show_int(value: int) -> str:
  """An integer's digits, shortened to keep messages short."""
  text = str(value)
  return text if len(text) <= 24 else text[:20] + "..."


def _type_name(value: Any) -> str:
  return _JSON_TYPES.get(type(value), type(value).__name__)


def _read(path_or_bytes: str | os.PathLike | bytes, source: str,
          max_bytes: int) -> bytes:
  """The file's bytes, at most `max_bytes` of them, or JudgementsError."""
  if isinstance(path_or_bytes, bytes):
    data = path_or_bytes
  else:
    try:
      with open(path_or_bytes, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
          raise JudgementsError(f"{source}: {size} bytes, over the "
                                f"{max_bytes}-byte cap")
        data = f.read(max_bytes + 1)
    except OSError as e:
      raise JudgementsError(f"{source}: cannot read it "
                            f"({e.strerror or type(e).__name__})") from None
  if len(data) > max_bytes:
    raise JudgementsError(f"{source}: over the {max_bytes}-byte cap")
  return data


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
  out = {}
  for key, value in pairs:
    if key in out:
      raise _Refused(f"an object repeats the key {show(key)}")
    out[key] = value
  return out


def _refuse_constant(name: str) -> None:
  raise _Refused(f"{name} is not JSON")


def _decode(data: bytes, source: str) -> Any:
  """The JSON value of `data`, strictly, or JudgementsError."""
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    raise JudgementsError(f"{source}: not UTF-8 (byte {e.start})") from None
  try:
    return json.loads(text, object_pairs_hook=_unique_keys,
                      parse_constant=_refuse_constant)
  except json.JSONDecodeError as e:
    raise JudgementsError(f"{source}: not JSON ({e.msg} at line {e.lineno} "
                          f"column {e.colno})") from None
  except RecursionError:
    raise JudgementsError(f"{source}: not JSON (nested too deeply)") from None
  except _Refused as e:
    raise JudgementsError(f"{source}: not JSON ({e})") from None
  except ValueError as e:  # Python's cap on an integer's digits, say.
    reason = " ".join(str(e).split(":")[0].split())[:80]
    raise JudgementsError(f"{source}: not JSON ({reason})") from None


def read_json(path_or_bytes: str | os.PathLike | bytes, source: str,
              max_bytes: int) -> Any:
  """A file's JSON value, read as strictly as a judgements file.

  Args:
    path_or_bytes: a local path, or the bytes.
    source: the name messages give the file.
    max_bytes: files larger than this are refused unread.

  Returns:
    The decoded value (no repeated keys, NaN or Infinity).

  Raises:
    JudgementsError: naming `source`: unreadable, too large, not UTF-8 JSON.
  """
  return _decode(_read(path_or_bytes, source, max_bytes), source)


def source_name(path_or_bytes: str | os.PathLike | bytes, source: str | None,
                unnamed: str) -> str:
  """The name a reader's messages give its file (the judgements and study key
  readers name theirs alike).

  Args:
    path_or_bytes: a local path, or the file's bytes.
    source: the name the caller gave, if any.
    unnamed: the name of bytes given without one.

  Returns:
    `source` if given, else the path, or `unnamed` for bytes.
  """
  if source is not None:
    return source
  if isinstance(path_or_bytes, bytes):
    return unnamed
  return os.fspath(path_or_bytes)


class Checker:
  """Field checks that raise JudgementsError naming the file and place."""

  def __init__(self, source: str):
    self.source = source

  def fail(self, where: str, problem: str) -> NoReturn:
    prefix = f"{self.source}: {where}: " if where else f"{self.source}: "
    raise JudgementsError(prefix + problem)

  def fields(self, obj: dict, expected: Sequence[str], where: str) -> None:
    for name in expected:
      if name not in obj:
        self.fail(where, f"missing field {show(name)}")
    for name in obj:
      if name not in expected:
        self.fail(where, f"unknown field {show(name)}")

  def typed(self, value: Any, kind: type, name: str, where: str) -> Any:
    if type(value) is not kind:
      self.fail(where, f"{name} is {_type_name(value)}, not "
                       f"{_JSON_TYPES[kind]}")
    return value

  def class_index(self, value: Any, spec: TaskSpec, task: str, name: str,
                  where: str) -> int:
    self.typed(value, int, name, where)
    if value not in spec.candidates:
      self.fail(where, f"class {_show_int(value)} was not a candidate of task "
                       f"{show(task)}")
    return value


def _header(top: Any, check: Checker, run_id: str) -> str:
  """Checks the top-level fields; returns the annotator id."""
  if not isinstance(top, dict):
    check.fail("", f"the top level is {_type_name(top)}, not an object")
  if "format" not in top:
    check.fail("", "missing field 'format' (not a judgements file)")
  if top["format"] != FORMAT:
    shown = (show(top["format"]) if isinstance(top["format"], str)
             else _type_name(top["format"]))
    check.fail("", f"format is {shown}, not {FORMAT!r}")
  check.fields(top, _TOP_FIELDS, "")
  check.typed(top["run_id"], str, "run_id", "")
  if top["run_id"] != run_id:
    check.fail("", f"judgements of another run: run_id {show(top['run_id'])},"
                   f" this run is {show(run_id)}")
  annotator = check.typed(top["annotator"], str, "annotator", "")
  if not 1 <= len(annotator) <= MAX_ANNOTATOR_CHARS:
    check.fail("", f"annotator has {len(annotator)} characters, not 1 to "
                   f"{MAX_ANNOTATOR_CHARS}")
  if not annotator.isprintable():
    check.fail("", f"annotator {show(annotator)} has a control character")
  check.typed(top["answers"], list, "answers", "")
  return annotator


def _check_answers(answers: list, tasks: dict[str, TaskSpec], annotator: str,
                   check: Checker) -> tuple[dict, dict, dict]:
  """The answers by kind: (errors, adversarial, subsets)."""
  out = {"error": {}, "adversarial": {}, "subset": {}}
  first = {}
  for i, answer in enumerate(answers):
    where = f"answers[{i}]"
    check.typed(answer, dict, "the answer", where)
    if "task" not in answer:
      check.fail(where, "missing field 'task'")
    task = check.typed(answer["task"], str, "task", where)
    if task not in tasks:
      check.fail(where, f"unknown task {show(task)}")
    if task in first:
      check.fail(where, f"a second answer for task {show(task)} (the first "
                        f"is answers[{first[task]}])")
    first[task] = i
    spec = tasks[task]
    if "kind" not in answer:
      check.fail(where, "missing field 'kind'")
    kind = check.typed(answer["kind"], str, "kind", where)
    if kind not in KINDS:
      check.fail(where, f"unknown kind {show(kind)}")
    if kind != spec.kind:
      check.fail(where, f"kind {kind!r}, but task {show(task)} is of kind "
                        f"{spec.kind!r}")
    check.fields(answer, _ANSWER_FIELDS[kind], where)
    out[kind][task] = _value(answer, spec, task, annotator, check, where)
  return out["error"], out["adversarial"], out["subset"]


def _value(answer: dict, spec: TaskSpec, task: str, annotator: str,
           check: Checker, where: str) -> Any:
  """One answer's value, checked against its task."""
  if spec.kind == "error":
    correct = check.typed(answer["correct"], list, "correct", where)
    indices = [check.class_index(c, spec, task, f"correct[{j}]", where)
               for j, c in enumerate(correct)]
    if len(set(indices)) != len(indices):
      check.fail(where, "correct lists a class twice")
    return tuple(sorted(indices))
  if spec.kind == "adversarial":
    acceptable = check.typed(answer["acceptable"], bool, "acceptable", where)
    overlay = check.typed(answer["overlay"], bool, "overlay", where)
    if spec.overlay is not None and spec.overlay(annotator) != overlay:
      shown, design = (("with", "without") if overlay
                       else ("without", "with"))
      check.fail(where, f"task {show(task)} was shown {shown} the overlay, "
                        f"but the design shows it to {show(annotator)} "
                        f"{design} it")
    return Adversarial(acceptable, overlay)
  if answer["seen"] is None:
    return None
  return check.class_index(answer["seen"], spec, task, "seen", where)


def load(path_or_bytes: str | os.PathLike | bytes, *, run_id: str,
         tasks: dict[str, TaskSpec], source: str | None = None,
         max_bytes: int = MAX_BYTES) -> Judgements:
  """Reads and checks one judgements file.

  Args:
    path_or_bytes: a local path, or the file's bytes.
    run_id: the run the answers must belong to.
    tasks: the run's task ids -> `TaskSpec`.
    source: the name messages give the file; default: the path, or
      "<judgements bytes>".
    max_bytes: files larger than this are refused unread.

  Returns:
    The `Judgements`.

  Raises:
    JudgementsError: the file is unreadable, too large, not UTF-8 JSON, not in
      the format, of another run, or answers tasks the run does not have, in
      ways their specs or the overlay design do not allow.
  """
  source = source_name(path_or_bytes, source, "<judgements bytes>")
  check = Checker(source)
  top = read_json(path_or_bytes, source, max_bytes)
  annotator = _header(top, check, run_id)
  errors, adversarial, subsets = _check_answers(top["answers"], tasks,
                                                annotator, check)
  return Judgements(source, run_id, annotator, errors, adversarial, subsets)


def load_many(paths: Sequence[str | os.PathLike], *, run_id: str,
              tasks: dict[str, TaskSpec],
              max_bytes: int = MAX_BYTES) -> list[Judgements]:
  """Reads several annotators' files; one file per annotator.

  Args:
    paths: local paths of judgements files.
    run_id: the run the answers must belong to.
    tasks: the run's task ids -> `TaskSpec`.
    max_bytes: files larger than this are refused unread.

  Returns:
    One `Judgements` per path, in order.

  Raises:
    JudgementsError: as `load`, or two files are by the same annotator.
  """
  out = []
  by_annotator = {}
  for path in paths:
    judgements = load(path, run_id=run_id, tasks=tasks, max_bytes=max_bytes)
    other = by_annotator.get(judgements.annotator)
    if other is not None:
      raise JudgementsError(f"{judgements.source}: annotator "
                            f"{show(judgements.annotator)} also wrote "
                            f"{other.source}")
    by_annotator[judgements.annotator] = judgements
    out.append(judgements)
  return out


def encode(judgements: Judgements) -> bytes:
  """The file `load` reads back as `judgements` (answers grouped by kind).

  Args:
    judgements: the answers to write.

  Returns:
    UTF-8 JSON in the format above.
  """
  answers = (
      [{"task": t, "kind": "error", "correct": list(c)}
       for t, c in judgements.errors.items()]
      + [{"task": t, "kind": "adversarial", "acceptable": a.acceptable,
          "overlay": a.overlay} for t, a in judgements.adversarial.items()]
      + [{"task": t, "kind": "subset", "seen": s}
         for t, s in judgements.subsets.items()])
  return json.dumps({"format": FORMAT, "run_id": judgements.run_id,
                     "annotator": judgements.annotator, "answers": answers},
                    indent=1, ensure_ascii=False).encode()
