"""Shared test setup: repo root on sys.path (for `benchmarks.torch_models`) and
locations of the optional shared data."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED_DATA = os.path.join(ROOT, "..", "shared", "data")
IMAGENET_SAMPLE = os.path.join(SHARED_DATA, "imagenet-sample")
CIFAR_DIR = os.path.join(SHARED_DATA, "cifar10")


def require_shared(path: str) -> str:
  """Skips the calling test, with the reason, when ../shared data is absent."""
  if not os.path.exists(path):
    pytest.skip(f"needs {os.path.relpath(path, ROOT)} (the shared data beside "
                "the checkout; absent in a user's clone)")
  return path


def run_job(args: list[str], devices: int = 1, timeout: int = 600,
            extra_env: dict[str, str] | None = None):
  """Runs `python -m jaxaudit.main ARGS` in a fresh process with N fake CPU
  devices; returns the CompletedProcess (stdout/stderr as text)."""
  import subprocess  # pylint: disable=g-import-not-at-top
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  env.update(extra_env or {})
  return subprocess.run([sys.executable, "-m", "jaxaudit.main", *args], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=timeout,
                        check=False)


def launch_local(args: list[str], num_processes: int = 2,
                 devices_per_process: int = 4, timeout: int = 900):
  """Runs launch/local.py with `args` after `--`; returns the CompletedProcess."""
  import subprocess  # pylint: disable=g-import-not-at-top
  return subprocess.run(
      [sys.executable, os.path.join(ROOT, "launch", "local.py"),
       f"--num_processes={num_processes}",
       f"--devices_per_process={devices_per_process}", "--", *args],
      cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
      env=dict(os.environ, JAX_PLATFORMS="cpu"))


def without_timing(summary):
  """A parsed summary.json tree without its `timing` fields (compilations and
  seconds: what differs between two runs of the same job)."""
  if isinstance(summary, dict):
    return {k: without_timing(v) for k, v in summary.items() if k != "timing"}
  if isinstance(summary, list):
    return [without_timing(v) for v in summary]
  return summary


def assert_same_summary(got, want, where: str = "summary") -> None:
  """Asserts two parsed summary.json trees are equal, floats within 1e-5,
  `timing` fields aside (`without_timing`).

  Layouts split the batch differently and XLA:CPU's convolutions round
  differently per batch size (last-bit differences, ~1e-7 relative), so floats
  are compared to 1e-5 relative, or to one unit of summary.json's sixth decimal
  (two values 1e-9 apart may round 1e-6 apart); a misplaced or double-counted
  example moves a 50-example metric by 2e-2. Keys, strings, booleans and
  integers must match.
  """
  if isinstance(want, dict):
    got, want = without_timing(got), without_timing(want)
    assert isinstance(got, dict) and set(got) == set(want), where
    for key in want:
      assert_same_summary(got[key], want[key], f"{where}.{key}")
  elif isinstance(want, list):
    assert isinstance(got, list) and len(got) == len(want), where
    for i, (a, b) in enumerate(zip(got, want)):
      assert_same_summary(a, b, f"{where}[{i}]")
  elif isinstance(want, float):
    assert got == pytest.approx(want, rel=1e-5, abs=1.5e-6), where
  else:
    assert type(got) is type(want) and got == want, where


# Outcome counts of the weight-format fuzz tests (tests/weights/test_fuzz.py),
# recorded with `record_property` so they reach the controller under xdist.
_FUZZ_OUTCOMES: list[str] = []


def pytest_runtest_logreport(report):
  if report.when == "call":
    _FUZZ_OUTCOMES.extend(value for name, value in report.user_properties
                          if name == "fuzz_outcomes")


def pytest_terminal_summary(terminalreporter):
  if _FUZZ_OUTCOMES:
    terminalreporter.section("fuzz outcomes")
    for line in sorted(_FUZZ_OUTCOMES):
      terminalreporter.line(line)
