"""Loaders that misbehave on purpose, to show the isolated harness catches each
failure the fuzz tests must catch (tests/weights/test_isolated_load.py)."""

import ctypes
import pickle

import numpy as np


def segfault(path):
  del path
  return ctypes.string_at(0)


def allocate(path):
  del path
  return {"w": np.ones(10**12, np.float32)}


def hang(path):
  del path
  while True:
    pass


def key_error(path):
  raise KeyError(path)


def foreign_memory(path):
  with open(path, "rb") as f:
    return {"w": np.frombuffer(f.read(), np.uint8)}


def plain_unpickle(path):
  with open(path, "rb") as f:
    return pickle.load(f)  # CPython's C unpickler, on purpose.


def plain_npz(path):
  with np.load(path, allow_pickle=False) as npz:
    return {k: npz[k] for k in npz.files}  # Allocates by the header's shape.
