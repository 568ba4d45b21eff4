"""Reads a flat {name: array} state dict from any supported weight file."""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxaudit import storage
from jaxaudit.errors import WeightsError
from jaxaudit.weights import bounds
from jaxaudit.weights.npz_file import load_npz_bytes
from jaxaudit.weights.safetensors_file import load_safetensors_bytes
from jaxaudit.weights.torch_checkpoint import load_torch_bytes

_CONTAINER_KEYS = ("state_dict", "model", "model_state_dict")


def _find_state_dict(obj: Any, source: str) -> dict[str, np.ndarray]:
  """The tensor dict inside a checkpoint (bare, or under 'state_dict'/'model')."""
  for _ in range(len(_CONTAINER_KEYS) + 1):
    if not isinstance(obj, dict):
      break
    inner = next((obj[k] for k in _CONTAINER_KEYS
                  if isinstance(obj.get(k), dict)), None)
    if inner is None:
      arrays = {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
      if arrays and all(isinstance(k, str) for k in arrays):
        return arrays
      break
    obj = inner
  raise WeightsError(f"{source}: no dictionary of named tensors found in the "
                     "checkpoint")


def load_state_dict(path: str, strip_prefix: str = "module.") -> dict[str, np.ndarray]:
  """Loads weights as a flat {name: np.ndarray} dict, safely.

  Args:
    path: a torch checkpoint (.pth/.pt/.th/.bin, zip or legacy; read with the
      allow-list unpickler), an .npz, or a .safetensors file, local or a URL
      (`jaxaudit.storage`). Every tensor is bounds-checked before it is read
      (see `jaxaudit.weights`).
    strip_prefix: removed from names that start with it (DataParallel's
      "module.").

  Returns:
    name -> owned array, names in torch's dotted convention.

  Raises:
    WeightsError: a missing, unreadable or malformed file, or one that breaks a
      safety rule (the message names the file, the tensor and the rule);
      `UnsafeCheckpointError` (a WeightsError) when a pickle references a
      disallowed global.
  """
  path = storage.expand(path)
  if not storage.isfile(path):
    raise WeightsError(f"config.model.checkpoint: no such file: {path}")
  data = bounds.read_file(path)
  if path.endswith(".safetensors"):
    state = load_safetensors_bytes(data, path)
  elif path.endswith(".npz"):
    state = load_npz_bytes(data, path)
  else:
    state = _find_state_dict(load_torch_bytes(data, path), path)
  return {(k[len(strip_prefix):] if strip_prefix and k.startswith(strip_prefix)
           else k): v for k, v in state.items()}
