"""A model's params from `config.model.checkpoint`, in any format, fitted to the model.

Formats (all through the bounded readers of `jaxaudit.weights`): an orbax
checkpoint directory, a Flax msgpack file (`.msgpack`, `flax.serialization.
to_bytes`), `.safetensors` and `.npz` (flat {"a/b/c": array} or torch-style
"a.b.c" names) and torch checkpoints. Where the model gives a params template
(its factory's params, or `init_fn` traced abstractly), the file's arrays are
matched to it by path and must cover it exactly, with the same shapes; the
result has the template's structure (Flax variables, an NNX state, ...). The
checkpoint may be a local path or a URL (`jaxaudit.storage`; orbax directories
on gs:// are read by orbax itself).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

from jaxaudit import storage
from jaxaudit.errors import DataError, WeightsError
from jaxaudit.models.classifier import Params
from jaxaudit.weights import load_state_dict
from jaxaudit.weights.msgpack_file import load_msgpack_file
from jaxaudit.weights.orbax_dir import load_orbax_dir

FIELD = "config.model.checkpoint"
_SHOWN = 4  # Names listed in a mismatch error.


def path_name(key_path: tuple) -> str:
  """A pytree key path as "a/b/c" (NNX's trailing `.value` dropped)."""
  parts = []
  for key in key_path:
    for attribute in ("key", "idx", "name"):
      if hasattr(key, attribute):
        parts.append(str(getattr(key, attribute)))
        break
    else:
      parts.append(str(key))
  if len(key_path) > 1 and getattr(key_path[-1], "name", None) == "value":
    parts.pop()
  return "/".join(parts)


def flatten(tree: Any) -> dict[str, Any]:
  """{"a/b/c": leaf} of a pytree."""
  return {path_name(p): leaf
          for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _nest(flat: dict[str, np.ndarray]) -> dict:
  """{"a/b": x} or {"a.b": x} -> {"a": {"b": x}} (no template to match)."""
  separator = "/" if any("/" in k for k in flat) else "."
  tree: dict = {}
  for key, value in flat.items():
    node = tree
    *parents, leaf = key.split(separator)
    for part in parents:
      node = node.setdefault(part, {})
      if not isinstance(node, dict):
        raise WeightsError(f"{FIELD}: '{key}' is both an array and a group")
    node[leaf] = value
  return tree


def fit_to_template(arrays: dict[str, np.ndarray], template: Any,
                    source: str) -> Params:
  """`template`'s structure filled with `arrays` matched by path.

  Keys match a template path exactly or with "." for "/" (torch style).

  Raises:
    WeightsError: naming the template paths the file lacks, the arrays it has
      that the model does not, and shape mismatches.
  """
  leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
  paths = [path_name(p) for p, _ in leaves]
  by_path = {k.replace(".", "/"): v for k, v in arrays.items()}
  by_path.update(arrays)
  missing = [p for p in paths if p not in by_path]
  extra = sorted(set(k.replace(".", "/") for k in arrays) - set(paths)
                 - {p.replace(".", "/") for p in paths})
  wrong = [f"{p} {np.shape(by_path[p])} vs {tuple(leaf.shape)}"
           for p, (_, leaf) in zip(paths, leaves)
           if p in by_path and tuple(np.shape(by_path[p])) != tuple(leaf.shape)]
  problems = []
  if missing:
    problems.append(f"{len(missing)} params missing from the file, e.g. "
                    + ", ".join(missing[:_SHOWN]))
  if extra:
    problems.append(f"{len(extra)} arrays the model does not have, e.g. "
                    + ", ".join(extra[:_SHOWN]))
  if wrong:
    problems.append(f"{len(wrong)} shapes differ (file vs model), e.g. "
                    + "; ".join(wrong[:_SHOWN]))
  if problems:
    raise WeightsError(f"{FIELD}: {source} does not fit the model: "
                       + "; ".join(problems))
  values = [np.asarray(by_path[p]).astype(leaf.dtype, copy=False)
            for p, (_, leaf) in zip(paths, leaves)]
  return jax.tree_util.tree_unflatten(treedef, values)


def load_params(path: str, template: Any | None,
                convert_state_dict: Callable[[dict], Params] | None) -> Params:
  """Params from a checkpoint file or orbax directory.

  Args:
    path: the checkpoint (a local path or a URL).
    template: the model's params (arrays or ShapeDtypeStructs), or None.
    convert_state_dict: maps a flat torch-style state dict to params (the
      built-in models' converters), or None.

  Returns:
    The params pytree (the template's structure when there is one).

  Raises:
    WeightsError: the file is unreadable, unsafe, or does not fit the model
      (messages name config.model.checkpoint and the file).
  """
  path = storage.expand(path)
  if not storage.exists(path):
    raise WeightsError(f"{FIELD}: no such file or directory: {path}")
  try:
    if storage.isdir(path):
      expected = None if template is None else {
          k: tuple(v.shape) for k, v in flatten(template).items()}
      tree = load_orbax_dir(path, expected)
    elif path.endswith(".msgpack"):
      tree = load_msgpack_file(path)
    else:
      flat = load_state_dict(path)
      if convert_state_dict is not None:
        try:
          return convert_state_dict(flat)
        except DataError as e:
          raise WeightsError(f"{FIELD}: {path}: {e}") from None
      if template is None:
        return _nest(flat)
      return fit_to_template(flat, template, path)
  except WeightsError as e:
    if str(e).startswith(FIELD):
      raise
    raise WeightsError(f"{FIELD}: {e}") from None
  except DataError as e:
    raise WeightsError(f"{FIELD}: {e}") from None
  if template is None:
    return tree
  return fit_to_template(flatten(tree), template, path)
