"""The fuzz harness itself: each failure a weight loader could have is caught."""

import pytest

import isolated_load


@pytest.mark.parametrize("probe, kind", [
    ("segfault", "crash"), ("allocate", "memory"), ("hang", "hang"),
    ("key_error", "other"), ("foreign_memory", "bad-load")])
def test_harness_reports_each_failure(tmp_path, probe, kind):
  path = tmp_path / "w.pth"
  path.write_bytes(b"\x00" * 16)
  with isolated_load.IsolatedLoader(timeout_s=3, memory_mb=256) as loader:
    outcome = loader.load(str(path), f"harness_probes:{probe}")
    assert outcome.kind == kind, outcome
    # The helper survives and serves the next case.
    assert loader.load(str(path)).kind == "refused"
