"""Fuzzes every weight format jaxaudit reads, starting from real files.

Each case is a real file (the Lite0 legacy pickle the package ships, small zip
and legacy torch files written by torch, the CIFAR `.th` files where ../shared
exists, an .npz and a .safetensors file) with 1-4 seeded mutations drawn by
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

Default suite: about 1,000 cases; `-m slow`: about 20,000. Outcome counts are
printed at the end of the run (`conftest.py`, "fuzz outcomes").
"""

import collections
import importlib.util
import json
import os

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
CASES = {"lite0_legacy": (150, 1500), "small_legacy": (200, 4000),
         "small_zip": (200, 4000), "npz": (200, 4000), "safetensors": (200, 4000),
         "cifar_resnet20_legacy": (50, 2500)}


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
    arrays = {"conv.weight": np.arange(54, dtype=np.float32).reshape(2, 3, 3, 3),
              "bn.mask": np.array([True, False]),
              "fc.bias": np.array([1, -2], np.int64),
              "fortran": np.asfortranarray(np.eye(3, dtype=np.float16))}
    path = os.path.join(tmp_dir, f"seed.{name}")
    if name == "npz":
      np.savez(path, **arrays)
    else:
      from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
      save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, path)
    kind = name
  with open(path, "rb") as f:
    return mutations.make_seed(name, f.read(), kind)


def _suffix(seed: mutations.Seed) -> str:
  return {"npz": ".npz", "safetensors": ".safetensors"}.get(seed.kind, ".pth")


def _fuzz(seed_name: str, cases: int, tmp_path, record_property) -> None:
  seed = _seed(seed_name, str(tmp_path))
  outcomes = collections.Counter()
  failures = []
  path = str(tmp_path / f"case{_suffix(seed)}")
  torch = (seed.kind in ("legacy", "zip")
           and importlib.util.find_spec("torch") is not None)
  with isolated_load.IsolatedLoader(timeout_s=20, memory_mb=1024,
                                    torch=torch) as loader:
    # The unmutated seed must load: the mutations start from a working file.
    with open(path, "wb") as f:
      f.write(seed.data)
    assert loader.load(path).kind == "loaded", seed_name

    @settings(max_examples=cases, deadline=None, derandomize=True,
              database=None, suppress_health_check=list(HealthCheck),
              print_blob=True)
    @given(st.data())
    def case(data):
      mutated = mutations.mutate(seed, data.draw)
      with open(path, "wb") as f:
        f.write(mutated)
      outcome = loader.load(path)
      outcomes[outcome.kind] += 1
      if outcome.kind not in isolated_load.ALLOWED:
        failures.append(outcome)
      assert outcome.kind in isolated_load.ALLOWED, outcome

    case()
  record_property("fuzz_outcomes", json.dumps(
      {"seed": seed_name, "cases": sum(outcomes.values()), **outcomes}))
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
