"""Loads weight files in isolated processes with a time and memory limit.

`IsolatedLoader` starts one helper process (this file run as a script) that
imports `jaxaudit.weights` once and then forks a fresh child for every file: the
child caps its address space, loads the file with the public loader and reports
what happened through a pipe. A child that crashes, hangs or runs out of memory
is reported as such and cannot take the test process down.

Outcomes (`Outcome.kind`):
  loaded    every tensor came back as an owned array of an allowed dtype, in
            total within the loader's budget (and, with `torch=True`, equal to
            what `torch.load(weights_only=True)` reads where torch reads the
            file at all);
  refused   WeightsError or ConfigError, whose message names the file;
  bad-load  the loader returned data that breaks those rules, or differs
            from torch's;
  unnamed   an allowed error whose message does not name the file;
  other     any other exception type (its name in `detail`);
  memory    MemoryError (the loader tried to allocate past the limit);
  crash     the child died from a signal (`detail`: the signal);
  hang      the child ran past the time limit and was killed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import signal
import subprocess
import sys
import time

ALLOWED = ("loaded", "refused")


@dataclasses.dataclass(frozen=True)
class Outcome:
  kind: str
  detail: str = ""


class IsolatedLoader:
  """A helper process that loads files in forked, limited children."""

  def __init__(self, timeout_s: float = 20.0, memory_mb: int = 1024,
               torch: bool = False, preload: bool = False):
    """Args:
      timeout_s: wall-clock limit per file.
      memory_mb: address space a child may add to what it starts with.
      torch: also read every loaded file with `torch.load(weights_only=True)`
        (in a separate grandchild) and require the same tensors.
      preload: import orbax in the helper once (each child would otherwise
        spend seconds importing it).
    """
    self._timeout = timeout_s
    self._memory = memory_mb
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    self._process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__)]
        + (["--torch"] if torch else []) + (["--orbax"] if preload else []),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, env=env, text=True, bufsize=1)

  def load(self, path: str, loader: str = "jaxaudit.weights:load_state_dict"
           ) -> Outcome:
    """Loads `path` with the function `loader` ("module:name") in a fresh
    child."""
    request = {"path": path, "loader": loader, "timeout": self._timeout,
               "memory_mb": self._memory}
    self._process.stdin.write(json.dumps(request) + "\n")
    line = self._process.stdout.readline()
    if not line:
      raise RuntimeError("the isolated loader process died")
    reply = json.loads(line)
    return Outcome(reply["kind"], reply.get("detail", ""))

  def close(self) -> None:
    self._process.stdin.close()
    self._process.wait(timeout=30)

  def __enter__(self) -> "IsolatedLoader":
    return self

  def __exit__(self, *unused) -> None:
    self.close()


# ---- the helper process ----------------------------------------------------


def _owned(array) -> bool:
  base = array
  while base.base is not None:
    base = base.base
    if not hasattr(base, "flags"):
      return False  # A view of bytes, an mmap or other foreign memory.
  return bool(base.flags.owndata)


def _classify_result(result, path: str) -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxaudit.weights import bounds  # pylint: disable=g-import-not-at-top
  arrays, pending = [], [result]
  while pending:
    value = pending.pop()
    if isinstance(value, np.ndarray):
      arrays.append(value)
    elif isinstance(value, dict):
      pending.extend(value.values())
    elif isinstance(value, (list, tuple)):
      pending.extend(value)
  allowed = set(bounds.DTYPES.values())
  total = sum(a.nbytes for a in {id(a): a for a in arrays}.values())
  size = (sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path)
              for f in fs) if os.path.isdir(path) else os.path.getsize(path))
  limit = bounds.BUDGET_FACTOR * size + bounds.BUDGET_SLACK
  for array in arrays:
    if array.dtype not in allowed:
      return {"kind": "bad-load", "detail": f"dtype {array.dtype}"}
    if not _owned(array):
      return {"kind": "bad-load", "detail": "array does not own its memory"}
  if total > limit:
    return {"kind": "bad-load", "detail": f"{total} bytes > budget {limit}"}
  return {"kind": "loaded", "detail": f"{len(arrays)} arrays"}


def _child(request: dict) -> dict:
  import resource  # pylint: disable=g-import-not-at-top
  with open("/proc/self/status") as f:
    size_kb = next(int(line.split()[1]) for line in f
                   if line.startswith("VmSize:"))
  limit = size_kb * 1024 + request["memory_mb"] * 2**20
  resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
  resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
  cpu = int(request["timeout"]) + 1
  resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
  import importlib  # pylint: disable=g-import-not-at-top
  from jaxaudit import errors  # pylint: disable=g-import-not-at-top
  module, name = request["loader"].split(":")
  load = getattr(importlib.import_module(module), name)
  path = request["path"]
  try:
    result = load(path)
  except (errors.WeightsError, errors.ConfigError) as e:
    if path not in str(e):
      return {"kind": "unnamed", "detail": str(e)[:300]}
    return {"kind": "refused", "detail": str(e)[:300]}
  except MemoryError:
    return {"kind": "memory"}
  except BaseException as e:  # pylint: disable=broad-except
    return {"kind": "other", "detail": f"{type(e).__name__}: {str(e)[:300]}"}
  outcome = _classify_result(result, path)
  if outcome["kind"] == "loaded" and "torch" in sys.modules:
    reference = _fork_and_wait(lambda: _compare_with_torch(result, path),
                               request["timeout"])
    if reference["kind"] != "same":
      return {"kind": "bad-load", "detail": f"torch: {reference}"}
    outcome["detail"] += "; " + reference.get("detail", "")
  return outcome


def _flat_arrays(value, path: str = "") -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  if isinstance(value, torch.Tensor):
    # detach: a mutated pickle may ask for requires_grad=True.
    value = (value.float() if value.dtype == torch.bfloat16
             else value).detach().numpy()
  if isinstance(value, np.ndarray):
    return {path: value}
  out = {}
  if isinstance(value, dict):
    for key, item in value.items():
      out.update(_flat_arrays(item, f"{path}/{key}"))
  elif isinstance(value, (list, tuple)):
    for i, item in enumerate(value):
      out.update(_flat_arrays(item, f"{path}[{i}]"))
  return out


def _compare_with_torch(result, path: str) -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  try:
    reference = torch.load(path, weights_only=True, map_location="cpu")
  except Exception as e:  # pylint: disable=broad-except  (torch may refuse)
    return {"kind": "same", "detail": f"torch refuses: {type(e).__name__}"}
  # `result` may be the whole checkpoint or the state dict inside it, with
  # "module." stripped: match each of our tensors by its last name.
  theirs = {}
  for key, value in _flat_arrays(reference).items():
    theirs[key.rsplit("/", 1)[-1].removeprefix("module.")] = value
  for key, value in _flat_arrays(result).items():
    other = theirs.get(key.rsplit("/", 1)[-1])
    if other is None:
      return {"kind": "different", "detail": f"torch has no tensor {key}"}
    if value.dtype.name == "bfloat16":
      value = value.astype(np.float32)
    if value.shape != other.shape or not np.array_equal(
        value, other, equal_nan=value.dtype.kind == "f"):
      return {"kind": "different", "detail": f"tensor {key}"}
  return {"kind": "same", "detail": "torch agrees"}


def _fork_and_wait(work, timeout: float) -> dict:
  """Runs `work()` (-> JSON-able dict) in a forked child; its reply, or what
  killed it ("crash"/"hang")."""
  read_fd, write_fd = os.pipe()
  pid = os.fork()
  if pid == 0:
    os.close(read_fd)
    try:
      reply = work()
    except BaseException as e:  # pylint: disable=broad-except
      reply = {"kind": "other", "detail": f"harness: {e!r}"[:300]}
    os.write(write_fd, json.dumps(reply).encode())
    os._exit(0)
  os.close(write_fd)
  deadline = time.monotonic() + timeout
  chunks = []
  while True:
    left = deadline - time.monotonic()
    ready, _, _ = select.select([read_fd], [], [], max(left, 0))
    if not ready:
      os.kill(pid, signal.SIGKILL)
      os.waitpid(pid, 0)
      os.close(read_fd)
      return {"kind": "hang"}
    chunk = os.read(read_fd, 65536)
    if not chunk:
      break
    chunks.append(chunk)
  os.close(read_fd)
  _, status = os.waitpid(pid, 0)
  if os.WIFSIGNALED(status):
    sig = os.WTERMSIG(status)
    kind = "hang" if sig in (signal.SIGXCPU, signal.SIGKILL) else "crash"
    return {"kind": kind, "detail": signal.Signals(sig).name}
  if not chunks:
    return {"kind": "crash", "detail": f"exit status {os.WEXITSTATUS(status)}"}
  return json.loads(b"".join(chunks))


def _serve() -> None:
  import jaxaudit.weights  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  if "--torch" in sys.argv:
    import torch  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  if "--orbax" in sys.argv:
    import orbax.checkpoint  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  for line in sys.stdin:
    request = json.loads(line)
    reply = _fork_and_wait(lambda: _child(request), request["timeout"])
    print(json.dumps(reply), flush=True)


if __name__ == "__main__":
  _serve()
