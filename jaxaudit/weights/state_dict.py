"""Reads a flat {name: array} state dict from any supported weight file."""

from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np

from jaxaudit.errors import DataError
from jaxaudit.weights.torch_checkpoint import load_torch_checkpoint
from jaxaudit.weights.torch_checkpoint import UnsafeCheckpointError


def _find_state_dict(obj, path: str) -> dict[str, np.ndarray]:
  """The tensor dict inside a checkpoint (bare, or under 'state_dict'/'model')."""
  if isinstance(obj, dict):
    for key in ("state_dict", "model", "model_state_dict"):
      if key in obj and isinstance(obj[key], dict):
        return _find_state_dict(obj[key], path)
    arrays = {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
    if arrays:
      return arrays
  raise DataError(f"{path}: no tensor dictionary found in the checkpoint")


def load_state_dict(path: str, strip_prefix: str = "module.") -> dict[str, np.ndarray]:
  """Loads weights as a flat {name: np.ndarray} dict.

  Args:
    path: a torch checkpoint (.pth/.pt/.th/.bin, zip or legacy; read with the
      allow-list unpickler), an .npz, or a .safetensors file.
    strip_prefix: removed from names that start with it (DataParallel's
      "module.").

  Returns:
    name -> array, names in torch's dotted convention.

  Raises:
    DataError: missing or unreadable file (the message names it).
    UnsafeCheckpointError: the pickle references a disallowed global.
  """
  path = os.path.expanduser(path)
  if not os.path.isfile(path):
    raise DataError(f"config.model.checkpoint: no such file: {path}")
  try:
    if path.endswith(".safetensors"):
      from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
      state = load_file(path)
    elif path.endswith(".npz"):
      with np.load(path, allow_pickle=False) as npz:
        state = {k: npz[k] for k in npz.files}
    else:
      state = _find_state_dict(load_torch_checkpoint(path), path)
  except UnsafeCheckpointError:
    raise
  except (OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile,
          EOFError) as e:
    raise DataError(f"cannot read weights {path}: {e}") from e
  return {(k[len(strip_prefix):] if strip_prefix and k.startswith(strip_prefix)
           else k): v for k, v in state.items()}
