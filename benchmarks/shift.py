"""Corruption throughput: jaxaudit's JAX corruptions against the reference
code on the same CPU, per corruption, in one run.

The first `--n` ImageNet-sample photos at 224 x 224 (ImageNet parameters,
against imagecorruptions 1.1.2), or CIFAR-10 test images (`--parameters=
cifar`, against make_cifar_c.py; `--make_cifar_c` its path), at one
severity. jaxaudit corrupts batches of `--batch` in one compiled program per
corruption (its compile time is reported apart, once per corruption for all
severities); the reference corrupts one image at a time, as it is written.
Prints a markdown row per corruption: images per second on each side and
the speed-up. The reference's cost per image does not depend on how many it
corrupts, so on an accelerator it can be timed on fewer (`--reference_n`)
while jaxaudit fills its batches; `--sides` times one side alone (two
processes, one on the accelerator and one on the host's CPU, finish in the
time of the slower).

  pip install --no-deps imagecorruptions==1.1.2 opencv-python-headless
  python -m benchmarks.shift --n=64
"""

from __future__ import annotations

import os
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from benchmarks import corruption_peers
from benchmarks import peer_references as refs
from jaxaudit import compile_options
from jaxaudit.corruptions import frost, spec

_N = flags.DEFINE_integer("n", 64, "Images.")
_REFERENCE_N = flags.DEFINE_integer(
    "reference_n", 0, "Images the reference corrupts (0: --n).")
_SIDES = flags.DEFINE_multi_enum("sides", ["jaxaudit", "reference"],
                                 ["jaxaudit", "reference"], "Sides to time.")
_BATCH = flags.DEFINE_integer("batch", 32, "jaxaudit's batch.")
_SEVERITY = flags.DEFINE_integer("severity", 3, "Severity (1-5).")
_PARAMETERS = flags.DEFINE_enum("parameters", "imagenet",
                                list(spec.PARAMETER_SETS), "Parameter set.")
_CORRUPTIONS = flags.DEFINE_list("corruptions", list(spec.CORRUPTIONS),
                                 "Corruptions to time.")
_MAKE_CIFAR_C = flags.DEFINE_string("make_cifar_c", "",
                                    "Path of make_cifar_c.py (cifar only).")


def _inputs() -> np.ndarray:
  if _PARAMETERS.value == "imagenet":
    return refs.imagenet_inputs(_N.value)
  images, _ = refs.cifar_inputs(_N.value)
  return np.round(images * 255).astype(np.uint8)


def _jaxaudit(name: str, images: np.ndarray) -> tuple[float, float]:
  """(compile seconds, images per second) over every batch."""
  entry = spec.CORRUPTIONS[name]
  height, width = images.shape[1:3]
  built = jax.tree.map(jnp.asarray, entry.build(
      name, _PARAMETERS.value, height, width))
  corrupt = compile_options.jit(lambda x, keys, severity: spec.to_levels(
      entry.fn(x.astype(jnp.float32) / 255, keys,
               entry.at_severity(built, severity))))
  size = _BATCH.value
  batches = [images[i:i + size] for i in range(0, len(images), size)]
  batches[-1] = np.pad(batches[-1], ((0, size - len(batches[-1])),) +
                       ((0, 0),) * 3)
  severity = jnp.int32(_SEVERITY.value)
  keys = jax.random.split(jax.random.key(0), size)
  start = time.perf_counter()
  jax.block_until_ready(corrupt(jnp.asarray(batches[0]), keys, severity))
  compile_seconds = time.perf_counter() - start
  start = time.perf_counter()
  for batch in batches:
    jax.block_until_ready(corrupt(jnp.asarray(batch), keys, severity))
  return compile_seconds, len(images) / (time.perf_counter() - start)


def _reference(module, name: str, images: np.ndarray) -> float:
  """Images per second of the reference, one image at a time."""
  function = getattr(module, name)
  start = time.perf_counter()
  for image in images:
    np.uint8(np.asarray(function(Image.fromarray(image), _SEVERITY.value)))
  return len(images) / (time.perf_counter() - start)


def main(argv):
  del argv
  corruption_peers.patch_environment()
  module, peer = corruption_peers.reference(_PARAMETERS.value,
                                            _MAKE_CIFAR_C.value)
  images = _inputs()
  # make_cifar_c.py opens ./frost<k>.png: the photographs jaxaudit ships.
  os.chdir(frost.FOLDER)
  reference_images = images[:_REFERENCE_N.value or len(images)]
  print(f"{len(images)} images {images.shape[1]} x {images.shape[2]}, "
        f"severity {_SEVERITY.value}, {_PARAMETERS.value} parameters; "
        f"jaxaudit batch {_BATCH.value} on {jax.devices()[0].platform}; "
        f"reference: {peer} on {len(reference_images)} images\n")
  print("| corruption | jaxaudit img/s (compile s) | reference img/s | "
        "speed-up |\n|---|---|---|---|")
  for name in _CORRUPTIONS.value:
    ours = theirs = None
    if "jaxaudit" in _SIDES.value:
      compile_seconds, ours = _jaxaudit(name, images)
    if "reference" in _SIDES.value and hasattr(module, name):
      theirs = _reference(module, name, reference_images)
    print(f"| {name} | "
          + (f"{ours:.1f} ({compile_seconds:.1f})" if ours else "-") + " | "
          + (f"{theirs:.1f}" if theirs else "-") + " | "
          + (f"{ours / theirs:.2f}x" if ours and theirs else "-") + " |",
          flush=True)


if __name__ == "__main__":
  app.run(main)
