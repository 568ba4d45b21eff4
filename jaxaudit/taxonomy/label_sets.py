"""Multi-label ground truth: every class a person would accept for an image.

`label_sets_for(data, source)` returns one sorted list of class indices per
example (aligned with `ids`, default the dataset's own), or None when the
source does not apply to this data. An empty list means "no class applies"
(ReaL's convention: such images are left out of multi-label accuracy).

Sources (`config.taxonomy.multilabel`):
  "auto": the first that applies, in the order demo, tfds, real; else None.
  "none": no multi-label truth.
  "demo": the demo photos' `acceptable` lists
    (`jaxaudit/data/demo_images.json`).
  "real": ImageNet ReaL (Beyer et al. 2020) from the `imagenet-x` wheel's
    `annotations/imagenet_real_labels.jsonl`, in validation order, matched by
    file names `ILSVRC2012_val_XXXXXXXX.JPEG` (any folder, any extension).
  "tfds": a TFDS record field: `real_label` (`imagenet2012_real`) or
    `correct_multi_labels` (`imagenet2012_multilabel`).
  a path to a .json ({key: [classes]}) or a .csv (header `key,labels`, labels
    separated by spaces or ';'): a key is an example's file (as listed by the
    source, or its base name) or its id; a class is an index, a wnid or a name.
    Examples the file does not list get an empty set (left out).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re

from absl import logging
import numpy as np

from jaxaudit import classes
from jaxaudit import storage
from jaxaudit.data import sources
from jaxaudit.errors import DataError, ParameterError

PARAMETER = "multilabel"
SOURCES = ("auto", "none", "demo", "real", "tfds")
TFDS_FIELDS = ("real_label", "correct_multi_labels")
_REAL_FILE = ("annotations", "imagenet_real_labels.jsonl")
_PROBE = 64  # Examples whose names decide whether "real" applies.
_VAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})\.", re.IGNORECASE)

LabelSets = list[list[int]]


def label_sets_for(data, source: str, ids: np.ndarray | None = None,
                   labels: classes.LabelSpace | None = None
                   ) -> LabelSets | None:
  """Per-example label sets from the named source.

  Args:
    data: a `Dataset` (or a `StageContext`, whose `.data` is used).
    source: one of `SOURCES` or a .json/.csv path (see the module docstring).
    ids: global example ids to return sets for (any example of the job, not
      only this process's); default `data.ids`.
    labels: the job's label space (default: a context's, else
      ImageNet-1k's); demo/real/tfds need ImageNet-1k.

  Returns:
    [len(ids)] sorted class lists, or None when the source does not apply
    ("none", or "auto" with nothing found).

  Raises:
    ParameterError: ("multilabel") unknown source, a missing file, or one
      that cannot apply to this data.
    DataError: an unreadable or inconsistent label file.
  """
  if labels is None:
    labels = getattr(data, "labels", None)
    if not isinstance(labels, classes.LabelSpace):
      labels = classes.LabelSpace.of(classes.class_names(classes.IMAGENET1K))
  data = getattr(data, "data", data)
  ids = np.asarray(data.ids if ids is None else ids, np.int64)
  source = resolve_source(data, source, labels)
  if source is None:
    return None
  files = data.files_of(ids)
  if source.lower().endswith((".json", ".csv")):
    return _from_file(storage.expand(source), ids, files, labels)
  if source == "demo":
    acceptable = data.source.acceptable_labels()
    return [sorted(acceptable[i]) for i in ids.tolist()]
  if source == "tfds":
    return [_tfds_set(data.source.record(i)) for i in ids.tolist()]
  table = real_labels()
  return [sorted(table[_val_index(f)]) for f in files]


def resolve_source(data, source: str,
                   labels: classes.LabelSpace) -> str | None:
  """The source `label_sets_for` reads: "auto" resolved to "demo", "tfds",
  "real" or None; "none" -> None; a named source or a path checked.

  Raises:
    ParameterError: ("multilabel") unknown source, a missing file, or a
      named source that does not apply to this data.
  """
  data = getattr(data, "data", data)
  if source == "none":
    return None
  if source.lower().endswith((".json", ".csv")):
    if not storage.isfile(storage.expand(source)):
      raise ParameterError(PARAMETER, f"no such file: {source}")
    return source
  if source not in SOURCES:
    raise ParameterError(PARAMETER, f"unknown '{source}'; valid: "
                         + ", ".join(SOURCES) + ", or a .json/.csv path")
  if source != "auto":
    if not _applies(source, data, labels):
      raise ParameterError(PARAMETER, f"'{source}' does not apply to this "
                           "data: " + _requirement(source))
    return source
  for name in ("demo", "tfds", "real"):
    if _applies(name, data, labels):
      return name
  return None


def _requirement(source: str) -> str:
  return {
      "demo": "the demo photos (no config.data.dir/npz/tfds_name) and an "
              "ImageNet-1k model",
      "tfds": "a TFDS dataset with a 'real_label' or 'correct_multi_labels' "
              "field and an ImageNet-1k model",
      "real": "ImageNet validation files named ILSVRC2012_val_XXXXXXXX.JPEG "
              "and an ImageNet-1k model",
  }[source]


def _applies(source: str, data, labels: classes.LabelSpace) -> bool:
  """Whether `source` applies, judged on this process's first examples (no
  other process's records are read, and no more than `_PROBE` of its own;
  an example that then does not fit is a `DataError` naming it)."""
  if labels.kind != classes.IMAGENET1K:
    return False
  if source == "demo":
    return isinstance(data.source, sources.DemoSource)
  if source == "tfds":
    return (isinstance(data.source, sources.TfdsSource) and len(data.ids) > 0
            and any(k in data.source.record(int(data.ids[0]))
                    for k in TFDS_FIELDS))
  probe = data.files_of(data.ids[:_PROBE])
  return len(probe) > 0 and all(
      _VAL_NAME.search(os.path.basename(f)) for f in probe)


def _tfds_set(record) -> list[int]:
  for key in TFDS_FIELDS:
    if key in record:
      return sorted(int(c) for c in np.asarray(record[key]).reshape(-1))
  raise DataError(f"TFDS record has none of {TFDS_FIELDS}")


def _val_index(file: str) -> int:
  match = _VAL_NAME.search(os.path.basename(file))
  if match is None:
    raise DataError(f"{file}: ReaL labels need ImageNet validation names "
                    "(ILSVRC2012_val_XXXXXXXX); set config.taxonomy.multilabel")
  number = int(match.group(1))
  if not 1 <= number <= 50_000:
    raise DataError(f"{file}: ImageNet validation images are numbered 1..50000")
  return number - 1


@functools.cache
def real_labels() -> tuple[tuple[int, ...], ...]:
  """The 50,000 ReaL label sets in validation order (imagenet-x's copy)."""
  path = classes.package_data_path("imagenet_x", *_REAL_FILE)
  with open(path) as f:
    table = json.load(f)
  if len(table) != 50_000:
    raise DataError(f"{path}: expected 50000 label lists, got {len(table)}")
  return tuple(tuple(int(c) for c in row) for row in table)


def _from_file(path: str, ids: np.ndarray, files: list[str],
               labels: classes.LabelSpace) -> LabelSets:
  try:
    if path.lower().endswith(".json"):
      table = json.loads(storage.read_text(path))
      if not isinstance(table, dict):
        raise DataError(f"{path}: expected a JSON object {{key: [classes]}}")
    else:
      rows = list(csv.DictReader(io.StringIO(storage.read_text(path),
                                             newline="")))
      if rows and set(rows[0]) != {"key", "labels"}:
        raise DataError(f"{path}: expected CSV columns key,labels, got "
                        f"{sorted(rows[0])}")
      table = {r["key"]: re.split(r"[;\s]+", r["labels"].strip())
               for r in rows}
  except (OSError, ValueError) as e:
    raise DataError(f"cannot read label sets {path}: {e}") from e
  keys, num_classes = labels.keys, len(labels)
  parsed = {str(k): _parse_classes(v, keys, num_classes, path, k)
            for k, v in table.items()}
  out, missing = [], 0
  for example_id, file in zip(ids.tolist(), files):
    for key in (file, os.path.basename(file), str(example_id)):
      if key in parsed:
        out.append(parsed[key])
        break
    else:
      out.append([])
      missing += 1
  if ids.size and missing == ids.size:
    raise DataError(f"label sets file {path} lists none of the examples (keys are "
                    f"file names or ids, e.g. '{files[0]}')")
  if missing:
    logging.warning("%s: %d of %d examples not listed in %s; left out",
                    "label sets", missing, ids.size, path)
  return out


def _parse_classes(values, keys: dict[str, int], num_classes: int, path: str,
                   key) -> list[int]:
  if not isinstance(values, list):
    raise DataError(f"{path}: '{key}' must map to a list of classes")
  out = set()
  for value in values:
    text = str(value).strip()
    if not text:
      continue
    if text.lstrip("-").isdigit():
      index = int(text)
    elif text.lower() in keys:
      index = keys[text.lower()]
    else:
      raise DataError(f"{path}: '{key}': unknown class '{text}'")
    if not 0 <= index < num_classes:
      raise DataError(f"{path}: '{key}': class {index} not in "
                      f"[0, {num_classes})")
    out.add(index)
  return sorted(out)
