"""Reads orbax checkpoint directories, their declared arrays checked first.

Orbax allocates every array its metadata declares. Here the metadata is read
first (`StandardCheckpointer.metadata`): each array must have an allowed dtype
and, when the caller gives the shapes it expects (the model's params), exactly
those shapes; otherwise all declared arrays together must fit the directory's
budget (4x its bytes). Only then is the tree restored, as owned NumPy arrays.
Directories on gs:// are read by orbax itself (the folder checks go through
`jaxaudit.storage`); other URL schemes are not orbax's.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from jaxaudit import storage
from jaxaudit.errors import WeightsError
from jaxaudit.weights import bounds


def _directory_bytes(path: str) -> int:
  total = 0
  for folder, _, files in storage.walk(path):
    for name in files:
      total += storage.size(storage.join(folder, name))
  return total


def _path_name(path) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def declared_arrays(path: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
  """{"params/Dense_0/kernel": (shape, dtype)} as the metadata declares them."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  try:
    metadata = ocp.StandardCheckpointer().metadata(path)
    tree = getattr(metadata, "item_metadata", metadata)
    tree = getattr(tree, "tree", tree)
    leaves = jax.tree_util.tree_flatten_with_path(
        tree, is_leaf=lambda x: hasattr(x, "shape") and hasattr(x, "dtype"))[0]
  except Exception as e:  # pylint: disable=broad-except  (untrusted files)
    raise WeightsError(f"{path}: not a readable orbax checkpoint "
                       f"({bounds.describe_error(e)})") from None
  out = {}
  for key_path, leaf in leaves:
    name = _path_name(key_path)
    shape = getattr(leaf, "shape", None)
    if not isinstance(shape, tuple) or not all(
        isinstance(n, int) and n >= 0 for n in shape):
      raise WeightsError(f"{path}: array '{name}' has a bad declared shape")
    out[name] = (shape, bounds.allowed_dtype(leaf.dtype, path, name))
  return out


def load_orbax_dir(path: str, expected: dict[str, tuple[int, ...]] | None = None
                   ) -> Any:
  """The pytree of NumPy arrays an orbax checkpoint directory holds.

  Args:
    path: the directory (`StandardCheckpointer().save(path, tree)`).
    expected: {"a/b/c": shape} the caller needs; every declared array must be
      one of them with that shape (None: bound by the directory's size).

  Raises:
    WeightsError: unreadable metadata or data, a dtype outside the allow-list,
      an unexpected array or shape, or more declared bytes than the budget.
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  if not storage.isdir(path):
    raise WeightsError(f"{path}: not a directory (orbax checkpoints are)")
  declared = declared_arrays(path)
  if expected is not None:
    for name, (shape, _) in declared.items():
      if name not in expected:
        raise WeightsError(f"{path}: array '{name}' is not a parameter of the "
                           "model")
      if tuple(expected[name]) != shape:
        raise WeightsError(f"{path}: array '{name}' has shape {shape}, the model"
                           f" needs {tuple(expected[name])}")
  else:
    budget = bounds.Budget(path, _directory_bytes(path))
    for name, (shape, dtype) in declared.items():
      budget.charge(math.prod(shape) * dtype.itemsize, name)
  try:
    checkpointer = ocp.PyTreeCheckpointer()
    structure = checkpointer.metadata(path)
    structure = getattr(getattr(structure, "item_metadata", structure), "tree",
                        structure)
    restore_args = jax.tree.map(
        lambda _: ocp.RestoreArgs(restore_type=np.ndarray), structure,
        is_leaf=lambda x: hasattr(x, "shape") and hasattr(x, "dtype"))
    tree = checkpointer.restore(
        path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
  except Exception as e:  # pylint: disable=broad-except  (untrusted files)
    raise WeightsError(f"{path}: cannot restore the orbax checkpoint "
                       f"({bounds.describe_error(e)})") from None
  for key_path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    name = _path_name(key_path)
    if not isinstance(leaf, np.ndarray) or name not in declared or (
        leaf.shape != declared[name][0]):
      raise WeightsError(f"{path}: restored array '{name}' differs from its "
                         "metadata")
  # Owned copies: tensorstore's arrays view buffers of its own.
  return jax.tree.map(np.array, tree)
