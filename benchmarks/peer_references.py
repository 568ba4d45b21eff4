"""Recorded peer references: what a peer (torchattacks, Foolbox 3, Captum, a
plain-torch model) returned on exact inputs and weights, stored as JSON.

`scripts/record_peer_references.py` writes `tests/references/<name>.json`;
the tests in `tests/crosscheck/` re-run jaxaudit and compare with the record.
Both sides load their inputs through this module and hash what they feed, so a
changed image file or checkpoint fails the comparison instead of passing
against a stale record. NumPy only: no peer is needed to read a reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Iterable

import numpy as np

from jaxaudit.data.decode import decode_image
from jaxaudit.models.classifier import Preprocessing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCES_DIR = os.path.join(ROOT, "tests", "references")
CIFAR_DIR = os.path.join(ROOT, "..", "shared", "data", "cifar10")
CIFAR_WEIGHTS = os.path.join(CIFAR_DIR, "resnet20.th")
CIFAR_IMAGES = os.path.join(CIFAR_DIR, "test_jpeg.npz")
IMAGENET_SAMPLE = os.path.join(ROOT, "..", "shared", "data", "imagenet-sample")
# torchvision ResNet layouts: (bottleneck, blocks per stage).
RESNET_LAYOUTS = {18: (False, (2, 2, 2, 2)), 50: (True, (3, 4, 6, 3))}


def cifar_inputs(count: int) -> tuple[np.ndarray, np.ndarray]:
  """The first `count` shared CIFAR-10 test images, as every cross-check feeds
  them.

  Returns:
    (images float32 [count, 32, 32, 3] in [0, 1], labels int64 [count]).
  """
  with np.load(CIFAR_IMAGES) as npz:
    images = (npz["images"][:count] / 255.0).astype(np.float32)
    labels = npz["labels"][:count].astype(np.int64)
  return images, labels


def imagenet_inputs(count: int) -> np.ndarray:
  """The first `count` shared ImageNet-sample photos (sorted by file name),
  short side resized to 256 and centre-cropped to 224 by jaxaudit's decoder.

  Returns:
    uint8 [count, 224, 224, 3].
  """
  names = sorted(os.listdir(IMAGENET_SAMPLE))[:count]
  prep = Preprocessing(image_size=224, resize_size=256)
  return np.stack([decode_image(os.path.join(IMAGENET_SAMPLE, n), prep)
                   for n in names])


def sha256_arrays(*arrays: np.ndarray) -> str:
  """sha256 of the arrays' C-order bytes, in the order given."""
  digest = hashlib.sha256()
  for array in arrays:
    digest.update(np.ascontiguousarray(array).tobytes())
  return digest.hexdigest()


def sha256_inputs(images: np.ndarray, labels: np.ndarray | None = None) -> str:
  """sha256 of float32 NHWC image bytes, then int64 label bytes if given."""
  arrays = [np.asarray(images, np.float32)]
  if labels is not None:
    arrays.append(np.asarray(labels, np.int64))
  return sha256_arrays(*arrays)


def sha256_state(state: dict[str, np.ndarray]) -> str:
  """sha256 of a state dict: each name (sorted) then its array's bytes."""
  digest = hashlib.sha256()
  for name in sorted(state):
    digest.update(name.encode())
    digest.update(np.ascontiguousarray(state[name]).tobytes())
  return digest.hexdigest()


def sha256_file(path: str) -> str:
  """sha256 of a file's bytes."""
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def resnet_random_state(depth: int, seed: int) -> dict[str, np.ndarray]:
  """Seeded random weights for torchvision's ResNet-`depth`, torchvision names.

  Convolutions and the classifier draw U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  (torch's default init), BatchNorm scale and variance U(0.5, 1.5), shift and
  mean U(-0.2, 0.2), so every BatchNorm is non-trivial.

  Args:
    depth: 18 or 50.
    seed: the NumPy seed.

  Returns:
    name -> float32 array, e.g. "conv1.weight" [64, 3, 7, 7], "fc.bias" [1000].
  """
  rng = np.random.RandomState(seed)
  state = {}

  def conv(name, out, inp, kernel):
    bound = 1 / np.sqrt(inp * kernel * kernel)
    state[f"{name}.weight"] = rng.uniform(-bound, bound, (out, inp, kernel, kernel))

  def bn(name, channels):
    for suffix, low, high in (("weight", 0.5, 1.5), ("bias", -0.2, 0.2),
                              ("running_mean", -0.2, 0.2),
                              ("running_var", 0.5, 1.5)):
      state[f"{name}.{suffix}"] = rng.uniform(low, high, channels)

  bottleneck, blocks = RESNET_LAYOUTS[depth]
  expansion = 4 if bottleneck else 1
  conv("conv1", 64, 3, 7)
  bn("bn1", 64)
  in_planes = 64
  for stage, count in enumerate(blocks):
    planes = 64 * 2**stage
    for i in range(count):
      t = f"layer{stage + 1}.{i}"
      shapes = ([(planes, in_planes, 1), (planes, planes, 3),
                 (planes * 4, planes, 1)] if bottleneck else
                [(planes, in_planes, 3), (planes, planes, 3)])
      for j, (out, inp, kernel) in enumerate(shapes, 1):
        conv(f"{t}.conv{j}", out, inp, kernel)
        bn(f"{t}.bn{j}", out)
      if i == 0 and (stage > 0 or in_planes != planes * expansion):
        conv(f"{t}.downsample.0", planes * expansion, in_planes, 1)
        bn(f"{t}.downsample.1", planes * expansion)
      in_planes = planes * expansion
  bound = 1 / np.sqrt(in_planes)
  state["fc.weight"] = rng.uniform(-bound, bound, (1000, in_planes))
  state["fc.bias"] = rng.uniform(-bound, bound, 1000)
  return {k: v.astype(np.float32) for k, v in state.items()}


def rounded(values: Iterable[Any] | np.ndarray, digits: int = 7) -> list:
  """A float array as nested lists of `digits` significant digits, for JSON
  (inf and nan become None)."""
  array = np.asarray(values, np.float64)
  flat = [float(f"{v:.{digits}g}") if np.isfinite(v) else None
          for v in array.ravel()]
  return np.asarray(flat, dtype=object).reshape(array.shape).tolist()


def as_array(values: list) -> np.ndarray:
  """The inverse of `rounded`: nested lists -> float64 array, None -> inf."""
  to_float = np.vectorize(lambda v: np.inf if v is None else v, otypes=[float])
  return to_float(np.asarray(values, dtype=object))


def path_of(name: str) -> str:
  return os.path.join(REFERENCES_DIR, f"{name}.json")


def write(name: str, record: dict) -> str:
  """Writes `record` to tests/references/<name>.json; returns the path."""
  text = json.dumps(record, indent=1, sort_keys=True, allow_nan=False)
  # One line per list of scalars: short files, readable diffs.
  text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]",
                lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)
  os.makedirs(REFERENCES_DIR, exist_ok=True)
  with open(path_of(name), "w") as f:
    f.write(text + "\n")
  return path_of(name)


def load(name: str) -> dict:
  """The record tests/references/<name>.json."""
  with open(path_of(name)) as f:
    return json.load(f)
