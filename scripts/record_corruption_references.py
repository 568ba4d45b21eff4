"""Records the reference corruption code's outputs for the shift cross-checks.

`imagenet`: imagecorruptions 1.1.2 (PyPI; its ImageNet-C numbers) on the
first ImageNet-sample photos, resized to 256 and centre-cropped to 224 by
jaxaudit's decoder. `cifar`: make_cifar_c.py of github.com/hendrycks/
robustness (the code that made CIFAR-10-C; not a package: pass its path) on
the first shared CIFAR-10 test images. Writes tests/references/
corruptions_<set>.json (settings, versions, input hashes, per corruption and
severity the output's statistics) and .npz (the deterministic corruptions'
outputs, each a PNG of the images stacked vertically, keyed
"<corruption>/<severity>": PNG's filters store them in 60% of the bytes
np.savez_compressed takes).

The recording environment patches what newer libraries removed, and nothing
else (`benchmarks.corruption_peers`). Needs `pip install --no-deps
imagecorruptions==1.1.2 opencv-python-headless`.
"""

import argparse
import importlib.metadata
import io
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import corruption_peers
from benchmarks import peer_references as refs
from jaxaudit.corruptions import spec

IMAGENET_IMAGES = 1
CIFAR_IMAGES = 8


def _inputs(parameter_set: str) -> np.ndarray:
  if parameter_set == "imagenet":
    return refs.imagenet_inputs(IMAGENET_IMAGES)
  images, _ = refs.cifar_inputs(CIFAR_IMAGES)
  return np.round(images * 255).astype(np.uint8)


def record(parameter_set: str, make_cifar_c: str) -> None:
  from PIL import Image
  module, peer = corruption_peers.reference(parameter_set, make_cifar_c)
  images = _inputs(parameter_set)
  results, outputs = {}, {}
  for name, entry in spec.CORRUPTIONS.items():
    if entry.random or not hasattr(module, name):
      continue
    for severity in range(1, spec.SEVERITIES + 1):
      corrupted = np.stack([
          np.uint8(np.asarray(getattr(module, name)(Image.fromarray(x),
                                                    severity)))
          for x in images])
      png = io.BytesIO()
      Image.fromarray(np.concatenate(corrupted)).save(png, "PNG",
                                                      optimize=True)
      outputs[f"{name}/{severity}"] = np.frombuffer(png.getvalue(), np.uint8)
      results[f"{name}/{severity}"] = {
          "sha256": refs.sha256_arrays(corrupted),
          "mean": round(float(corrupted.mean()), 4)}
  base = refs.path_of(f"corruptions_{parameter_set}")[:-len(".json")]
  np.savez(base + ".npz", **outputs)
  versions = {p: importlib.metadata.version(p) for p in (
      "numpy", "scipy", "scikit-image", "opencv-python-headless", "pillow")}
  refs.write(f"corruptions_{parameter_set}", dict(
      peer=peer, versions=versions, parameter_set=parameter_set,
      inputs_sha256=refs.sha256_arrays(images), num_images=len(images),
      outputs=os.path.basename(base + ".npz"),
      outputs_sha256=refs.sha256_file(base + ".npz"),
      command="python scripts/record_corruption_references.py "
              f"--only={parameter_set}",
      results=results))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--only", default="imagenet,cifar")
  parser.add_argument("--make_cifar_c", default="",
                      help="path of make_cifar_c.py (github.com/hendrycks/"
                           "robustness, ImageNet-C/create_c/)")
  args = parser.parse_args()
  corruption_peers.patch_environment()
  for parameter_set in args.only.split(","):
    if parameter_set == "cifar" and not args.make_cifar_c:
      parser.error("--make_cifar_c is required for the cifar references")
    record(parameter_set, args.make_cifar_c)
    print(json.dumps({"recorded": parameter_set}))


if __name__ == "__main__":
  main()
