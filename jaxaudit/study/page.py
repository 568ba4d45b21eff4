"""The offline judgement page: one self-contained HTML file per study.

People open the file from disk in a current browser (no server, no network),
enter their annotator id, answer the tasks one at a time and download their
answers as a judgements file (`jaxaudit.study.judgements`). The page keeps the
answers in the browser's localStorage under `jaxaudit:<run_id>:<annotator>`
(every file:// page shares one storage) and reopens at the first unanswered
task when the same id is entered again.

Images travel as PNG data: URIs and the tasks as JSON in a
`<script type="application/json">` element with `<`, `>` and `&` escaped, so
no run text (a class name, a task id, the title) can end the element; the
page's script (`page.js`, beside this module) shows run text through text
nodes only. A Content-Security-Policy allows the page's own inline script and
style (by hash) and data: images, nothing else.

Orders and overlay conditions follow `design`: a declared annotator sees the
tasks in `design.task_order` and the adversarial images in the conditions of
`design.overlay_conditions`, both computed here and embedded; an id typed in
sees the tasks sorted by SHA-256 of "seed\\nannotator\\ntask id" (see
`page_order`) and the conditions of its digest slot, both computed by the page.
Subset tasks look the same whether the subset is SIS or a random control; task
ids are never shown, but they are in the page's source, so give subset tasks
ids that do not name their condition.
"""

from __future__ import annotations

import base64
import hashlib
import html
import importlib.resources
import json
import os
import struct
from typing import NamedTuple, Sequence, TextIO
import zlib

import numpy as np

from jaxaudit.errors import ParameterError
from jaxaudit.study import design
from jaxaudit.study import judgements

DEFAULT_TITLE = "jaxaudit human study"
_MAX_CLASS = 2**31
# Labels of the two overlay slots: `design.overlay_rules` over these declared
# ids gives each image's condition in slot 0 and slot 1.
_SLOTS = ("slot 0", "slot 1")
_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


class Task(NamedTuple):
  """One judgement task.

  Attributes:
    id: the task's id, unique in the study (written back in the answers).
    kind: "error", "adversarial" or "subset".
    image: [H, W, 3] uint8, the image judged: the misclassified image, the
      adversarial image, or the masked image holding only the pixel subset.
    candidates: "error": the (class index, class name) pairs the person may
      mark correct (the model's top-5 and the given label, deduplicated);
      "subset": the class choices (the person may also answer none).
    adversarial_class: "adversarial": the class name the model gave the
      adversarial image; the person says whether it is acceptable.
    overlay: "adversarial": [H', W', 3] uint8, the image with the explanation
      heat map blended, shown beside it in the overlay condition.
  """
  id: str
  kind: str
  image: np.ndarray
  candidates: Sequence[tuple[int, str]] = ()
  adversarial_class: str = ""
  overlay: np.ndarray | None = None


def _png(image: np.ndarray) -> bytes:
  """An [H, W, 3] uint8 image as an 8-bit RGB PNG file."""
  height, width, _ = image.shape
  rows = np.concatenate([np.zeros((height, 1), np.uint8),
                         image.reshape(height, width * 3)], axis=1)

  def chunk(tag: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + tag + body
            + struct.pack(">I", zlib.crc32(tag + body)))

  header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
          + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
          + chunk(b"IEND", b""))


def _data_uri(image: np.ndarray) -> str:
  return "data:image/png;base64," + base64.b64encode(_png(image)).decode()


def _check_image(image: object, name: str) -> np.ndarray:
  array = np.asarray(image)
  if (array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3
      or 0 in array.shape):
    raise ParameterError(name, f"must be [H, W, 3] uint8, got "
                               f"{array.dtype} {list(array.shape)}")
  return np.ascontiguousarray(array)


def _check_candidates(task: Task, name: str) -> list[list]:
  pairs = []
  for pair in task.candidates:
    if len(pair) != 2:
      raise ParameterError(name, f"candidates are (index, name), got {pair!r}")
    index, label = pair
    if (isinstance(index, bool) or not isinstance(index, (int, np.integer))
        or not 0 <= index < _MAX_CLASS or not isinstance(label, str)):
      raise ParameterError(name, f"candidates are (index in [0, 2**31), "
                                 f"name), got {pair!r}")
    pairs.append([int(index), label])
  if not pairs:
    raise ParameterError(name, "needs at least one candidate")
  if len({index for index, _ in pairs}) != len(pairs):
    raise ParameterError(name, "candidates repeat a class index")
  return pairs


def _check_tasks(tasks: Sequence[Task]) -> None:
  seen = set()
  for i, task in enumerate(tasks):
    name = f"tasks[{i}]"
    if not isinstance(task.id, str) or not task.id:
      raise ParameterError(name, f"id must be a non-empty string, got "
                                 f"{task.id!r}")
    if task.id in seen:
      raise ParameterError(name, f"repeats the task id {task.id!r}")
    seen.add(task.id)
    if task.kind not in judgements.KINDS:
      raise ParameterError(name, f"kind must be one of {judgements.KINDS}, "
                                 f"got {task.kind!r}")
    adversarial = task.kind == "adversarial"
    if adversarial != (task.overlay is not None):
      raise ParameterError(name, "an overlay image belongs to, and only to, "
                                 "an adversarial task")
    if adversarial != bool(task.adversarial_class):
      raise ParameterError(name, "an adversarial_class belongs to, and only "
                                 "to, an adversarial task")
    if adversarial and not isinstance(task.adversarial_class, str):
      raise ParameterError(name, "adversarial_class must be a string")
    if adversarial and len(task.candidates):
      raise ParameterError(name, "an adversarial task has no candidates")


def _check_annotators(annotators: Sequence[str]) -> None:
  if isinstance(annotators, str) or len(set(annotators)) != len(annotators):
    raise ParameterError("annotators", "must be a list of distinct ids")
  for a in annotators:
    if (not isinstance(a, str)
        or not 1 <= len(a) <= judgements.MAX_ANNOTATOR_CHARS
        or not a.isprintable()):
      raise ParameterError("annotators", f"ids are 1 to "
                           f"{judgements.MAX_ANNOTATOR_CHARS} printable "
                           f"characters, got {a!r}")


def _adversarial_ids(tasks: Sequence[Task]) -> list[str]:
  """The design's image ids: the adversarial tasks' ids in task order."""
  return [t.id for t in tasks if t.kind == "adversarial"]


def page_order(task_ids: list[str], seed: int, annotator: str,
               annotators: Sequence[str] = ()) -> list[str]:
  """The order in which the page shows the tasks to `annotator`.

  Args:
    task_ids: the tasks' ids, in the order given to `render_page`.
    seed: the study's seed.
    annotator: the annotator id.
    annotators: the declared annotators.

  Returns:
    `design.task_order(task_ids, seed, annotator)` for a declared annotator;
    for another id, `task_ids` sorted by the SHA-256 hex digest of
    "seed\\nannotator\\ntask id" (UTF-8), as the page's script sorts them.
  """
  if annotator in annotators:
    return design.task_order(task_ids, seed, annotator)
  prefix = f"{int(seed)}\n{annotator}\n"
  return sorted(task_ids,
                key=lambda t: hashlib.sha256((prefix + t).encode()).hexdigest())


def task_specs(tasks: Sequence[Task], *, seed: int,
               annotators: Sequence[str]) -> dict[str, judgements.TaskSpec]:
  """What `judgements.load` needs to check answers from this page.

  Args:
    tasks: the page's tasks.
    seed: the study's seed.
    annotators: the declared annotators, in order.

  Returns:
    task id -> `judgements.TaskSpec`, with the candidates shown and, for the
    adversarial tasks, the overlay rule of the design.
  """
  rules = design.overlay_rules(_adversarial_ids(tasks), list(annotators), seed)
  return {t.id: judgements.TaskSpec(
      t.kind, frozenset(int(i) for i, _ in t.candidates), rules.get(t.id))
          for t in tasks}


def _task_data(task: Task, slots: dict) -> dict:
  """One task as the page's script reads it."""
  name = f"task {task.id!r}"
  out = {"id": task.id, "kind": task.kind,
         "image": _data_uri(_check_image(task.image, f"{name} image"))}
  if task.kind == "adversarial":
    out.update(label=task.adversarial_class,
               heatmap=_data_uri(_check_image(task.overlay,
                                              f"{name} overlay")),
               overlay=[slots[task.id](s) for s in _SLOTS], options=[])
  else:
    out.update(options=_check_candidates(task, name), overlay=[False, False])
  return out


def _script_json(value: object) -> str:
  """JSON that no text inside can end its <script> element."""
  return json.dumps(value, ensure_ascii=True,
                    separators=(",", ":")).translate(_JSON_ESCAPES)


def _csp_hash(text: str) -> str:
  digest = hashlib.sha256(text.encode()).digest()
  return "'sha256-" + base64.b64encode(digest).decode() + "'"


def _resource(name: str) -> str:
  return (importlib.resources.files("jaxaudit.study") / name).read_text(
      encoding="utf-8")


def render_page(tasks: Sequence[Task], *, run_id: str, seed: int,
                annotators: Sequence[str],
                title: str = DEFAULT_TITLE) -> str:
  """The study page's HTML.

  Args:
    tasks: the tasks, each with its images ([H, W, 3] uint8).
    run_id: the run's id, written into every judgements file.
    seed: the study's seed, a non-negative integer (orders and conditions).
    annotators: the declared annotator ids, in order (their overlay slots
      alternate 0, 1, 0, ...); others may still type their own id.
    title: the page's heading.

  Returns:
    One self-contained HTML document.

  Raises:
    ParameterError: a task, id, seed or annotator is malformed.
  """
  if not isinstance(run_id, str) or not run_id:
    raise ParameterError("run_id", f"must be a non-empty string, got "
                                   f"{run_id!r}")
  if not isinstance(title, str):
    raise ParameterError("title", f"must be a string, got {title!r}")
  _check_tasks(tasks)
  _check_annotators(annotators)
  ids = [t.id for t in tasks]
  index = {t: i for i, t in enumerate(ids)}
  slots = design.overlay_rules(_adversarial_ids(tasks), list(_SLOTS), seed)
  declared = [{"id": a, "slot": design.annotator_slot(a, annotators),
               "order": [index[t] for t in design.task_order(ids, seed, a)]}
              for a in annotators]
  data = {"format": judgements.FORMAT, "run_id": run_id, "seed": str(seed),
          "title": title, "annotators": declared,
          "tasks": [_task_data(t, slots) for t in tasks]}
  script, style = _resource("page.js"), _resource("page.css")
  csp = ("default-src 'none'; script-src " + _csp_hash(script)
         + "; style-src " + _csp_hash(style)
         + "; img-src data:; base-uri 'none'; form-action 'none'")
  return (
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, "
      "initial-scale=1\">\n"
      f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n"
      "</head>\n<body>\n<noscript>This page needs JavaScript.</noscript>\n"
      "<div id=\"app\"></div>\n"
      f"<script type=\"application/json\" id=\"study-data\">"
      f"{_script_json(data)}</script>\n<script>{script}</script>\n"
      "</body>\n</html>\n")


def write_page(path_or_file: str | os.PathLike | TextIO, tasks: Sequence[Task],
               *, run_id: str, seed: int, annotators: Sequence[str],
               title: str = DEFAULT_TITLE) -> None:
  """Writes the study page (see `render_page`) as UTF-8.

  Args:
    path_or_file: a local path, or an open text file.
    tasks: the tasks.
    run_id: the run's id.
    seed: the study's seed.
    annotators: the declared annotator ids, in order.
    title: the page's heading.
  """
  page = render_page(tasks, run_id=run_id, seed=seed, annotators=annotators,
                     title=title)
  if hasattr(path_or_file, "write"):
    path_or_file.write(page)
  else:
    with open(path_or_file, "w", encoding="utf-8") as f:
      f.write(page)
