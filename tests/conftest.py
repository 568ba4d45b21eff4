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
