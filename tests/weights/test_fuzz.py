"""Fuzzes every weight format jaxaudit reads, starting from real files.

Each case is a real file (the Lite0 legacy pickle the package ships, small zip
and legacy torch files written by torch, the CIFAR `.th` files where ../shared
exists, an .npz, a .safetensors and a Flax .msgpack file) or a real orbax
checkpoint folder with 1-4 seeded mutations drawn by
hypothesis (`mutations.py`), loaded by the public loader in an isolated child
process with a time and memory limit (`isolated_load.py`). Allowed outcomes: a
load whose tensors are owned arrays of allowed dtypes within the budget (for
torch files, with torch installed, also equal to what `torch.load(weights_only=
True)` reads wherever torch reads the file), or a WeightsError/ConfigError
naming the file. That every loaded tensor lies inside its storage is enforced
twice: `bounds.check_view` refuses any view that leaves it, and the copy reads
only through bounds-checked NumPy indexing, whose IndexError would show here as
a failure. A crash, a hang, a MemoryError or any
other exception type fails, and hypothesis shrinks it to a minimal mutation.

Default suite: about 1,000 cases; `-m slow`: about 10,000. Outcome counts are
printed at the end of the run (`conftest.py`, "fuzz outcomes").
"""

import collections
import importlib.util
import json
import os
import shutil

from hypothesis import given, HealthCheck, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from conftest import CIFAR_DIR
import isolated_load
import mutations
from jaxaudit.models import efficientnet_lite

DATA = os.path.join(os.path.dirname(__file__), "data")
# Cases per seed: (default suite, slow suite).
CASES = {"lite0_legacy": (120, 600), "small_legacy": (150, 1600),
         "small_zip": (150, 1600), "npz": (150, 1600), "safetensors": (150, 1600),
         "cifar_resnet20_legacy": (50, 1000), "msgpack": (150, 1600),
         "orbax": (80, 400)}
# Which loader reads each kind of seed (the public path for each format).
LOADERS = {"msgpack": "jaxaudit.weights.msgpack_file:load_msgpack_file",
           "orbax": "jaxaudit.weights.orbax_dir:load_orbax_dir"}
_ARRAYS = {"conv.weight": np.arange(54, dtype=np.float32).reshape(2, 3, 3, 3),
           "bn.mask": np.array([True, False]),
           "fc.bias": np.array([1, -2], np.int64),
           "fortran": np.asfortranarray(np.eye(3, dtype=np.float16))}


def _seed(name: str, tmp_dir: str) -> mutations.Seed:
  if name == "lite0_legacy":
    path, kind = efficientnet_lite.default_checkpoint(), "legacy"
  elif name == "cifar_resnet20_legacy":
    path, kind = os.path.join(CIFAR_DIR, "resnet20.th"), "legacy"
    if not os.path.isfile(path):
      pytest.skip(f"needs {path} (the shared data beside the checkout; absent "
                  "in a user's clone)")
  elif name in ("small_legacy", "small_zip"):
    path, kind = os.path.join(DATA, f"{name}.pt"), name.split("_")[1]
  else:
    path, kind = os.path.join(tmp_dir, f"seed.{name}"), name
    if name == "npz":
      np.savez(path, **_ARRAYS)
    elif name == "msgpack":
      import flax.serialization  # pylint: disable=g-import-not-at-top
      tree = {"params": {"conv": {"kernel": _ARRAYS["conv.weight"]},
                         "fc": {"bias": _ARRAYS["fc.bias"]}},
              "batch_stats": {"mask": _ARRAYS["bn.mask"],
                              "f16": _ARRAYS["fortran"]}}
      with open(path, "wb") as f:
        f.write(flax.serialization.to_bytes(tree))
    else:
      from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
      save_file({k: np.ascontiguousarray(v) for k, v in _ARRAYS.items()}, path)
  with open(path, "rb") as f:
    return mutations.make_seed(name, f.read(), kind)


def _suffix(seed: mutations.Seed) -> str:
  return {"npz": ".npz", "safetensors": ".safetensors",
          "msgpack": ".msgpack"}.get(seed.kind, ".pth")


def _orbax_seed(tmp_dir: str) -> dict[str, bytes]:
  """A real orbax checkpoint folder as {relative path: bytes}."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  folder = os.path.join(tmp_dir, "orbax-seed")
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(folder, {"params": {k.replace(".", "_"): v for k, v in
                                        _ARRAYS.items() if k != "fortran"}})
  checkpointer.wait_until_finished()
  files = {}
  for root, _, names in os.walk(folder):
    for name in names:
      full = os.path.join(root, name)
      with open(full, "rb") as f:
        files[os.path.relpath(full, folder)] = f.read()
  return files


def _write_tree(folder: str, files: dict[str, bytes]) -> None:
  shutil.rmtree(folder, ignore_errors=True)
  for name, data in files.items():
    os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
      f.write(data)


def _fuzz(seed_name: str, cases: int, tmp_path, record_property) -> None:
  if seed_name == "orbax":
    seed_files = _orbax_seed(str(tmp_path))
    path = str(tmp_path / "case")
    write = lambda files: _write_tree(path, files)
    mutate = lambda draw: mutations.mutate_tree(seed_files, draw)
    unmutated = seed_files
    kind = "orbax"
  else:
    seed = _seed(seed_name, str(tmp_path))
    path = str(tmp_path / f"case{_suffix(seed)}")

    def write(data):
      with open(path, "wb") as f:
        f.write(data)

    mutate = lambda draw: mutations.mutate(seed, draw)
    unmutated, kind = seed.data, seed.kind
  loader_name = LOADERS.get(kind, "jaxaudit.weights:load_state_dict")
  outcomes = collections.Counter()
  failures = []
  torch = (kind in ("legacy", "zip")
           and importlib.util.find_spec("torch") is not None)
  with isolated_load.IsolatedLoader(timeout_s=20, memory_mb=1024,
                                    torch=torch,
                                    preload=kind == "orbax") as loader:
    # The unmutated seed must load: the mutations start from a working file.
    write(unmutated)
    assert loader.load(path, loader_name).kind == "loaded", seed_name

    @settings(max_examples=cases, deadline=None, derandomize=True,
              database=None, suppress_health_check=list(HealthCheck),
              print_blob=True)
    @given(st.data())
    def case(data):
      write(mutate(data.draw))
      outcome = loader.load(path, loader_name)
      if outcome.kind == "crash":
        # A crash must reproduce on the same bytes to count: once in a CI run
        # a forked child died of SIGABRT on an orbax folder whose only change
        # was commit_success.txt, which the next child loaded (the forked
        # child's environment, not the file). Unreproduced ones are counted.
        again = loader.load(path, loader_name)
        if again.kind != "crash":
          outcomes["unreproduced_crash"] += 1
          outcome = again
      outcomes[outcome.kind] += 1
      if outcome.kind not in isolated_load.ALLOWED:
        failures.append(outcome)
      assert outcome.kind in isolated_load.ALLOWED, outcome

    case()
  record_property("fuzz_outcomes", json.dumps(
      {"seed": seed_name, "cases": sum(
          v for k, v in outcomes.items() if k != "unreproduced_crash"),
       **outcomes}))
  assert not failures
  # Both outcomes must occur: a fuzzer that only breaks files (or never does)
  # tests nothing.
  assert outcomes["loaded"] > 0 and outcomes["refused"] > 0, outcomes


@pytest.mark.parametrize("seed_name", sorted(CASES))
def test_fuzz(seed_name, tmp_path, record_property):
  _fuzz(seed_name, CASES[seed_name][0], tmp_path, record_property)


@pytest.mark.slow
@pytest.mark.parametrize("seed_name", sorted(CASES))
def test_fuzz_long(seed_name, tmp_path, record_property):
  _fuzz(seed_name, CASES[seed_name][1], tmp_path, record_property)
