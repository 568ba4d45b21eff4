"""Torch -> Flax tensor layout conversions shared by the model converters."""

from __future__ import annotations

import numpy as np

from jaxaudit.errors import DataError


class StateDict:
  """A torch state dict that tracks which tensors a converter consumed."""

  def __init__(self, state: dict[str, np.ndarray], source: str = ""):
    """Args: state: name -> array; source: the file, prefixed to messages."""
    self._state = state
    self._source = f"{source}: " if source else ""
    self._used: set[str] = set()

  def take(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if name not in self._state:
      raise DataError(f"{self._source}missing tensor '{name}'")
    value = np.asarray(self._state[name], np.float32)
    if shape is not None and value.shape != tuple(shape):
      raise DataError(f"{self._source}tensor '{name}' has shape "
                      f"{value.shape}, expected {tuple(shape)}")
    self._used.add(name)
    return value

  def check_all_used(self) -> None:
    """Raises if weights were left over (a sign of the wrong architecture)."""
    unused = [k for k in self._state
              if k not in self._used and not k.endswith("num_batches_tracked")]
    if unused:
      raise DataError(f"{self._source}{len(unused)} unused tensors, e.g. "
                      f"{unused[:3]}; does the checkpoint fit this model?")


def conv(state: StateDict, name: str) -> dict[str, np.ndarray]:
  """Conv2d [O, I, kh, kw] -> Flax kernel [kh, kw, I, O] (+ bias if present)."""
  out = {"kernel": state.take(f"{name}.weight").transpose(2, 3, 1, 0)}
  if f"{name}.bias" in state._state:  # pylint: disable=protected-access
    out["bias"] = state.take(f"{name}.bias")
  return out


def dense(state: StateDict, name: str) -> dict[str, np.ndarray]:
  """Linear [O, I] -> Flax Dense kernel [I, O] and bias [O]."""
  return {"kernel": state.take(f"{name}.weight").T,
          "bias": state.take(f"{name}.bias")}


def batch_norm(state: StateDict, name: str) -> tuple[dict, dict]:
  """BatchNorm2d -> (Flax params {scale, bias}, batch_stats {mean, var})."""
  return ({"scale": state.take(f"{name}.weight"),
           "bias": state.take(f"{name}.bias")},
          {"mean": state.take(f"{name}.running_mean"),
           "var": state.take(f"{name}.running_var")})


def add_bn(params: dict, stats: dict, flax_name: str, state: StateDict,
           torch_name: str) -> None:
  """Converts a BatchNorm into `params[flax_name]` and `stats[flax_name]`."""
  params[flax_name], stats[flax_name] = batch_norm(state, torch_name)
