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
else: `pkg_resources.resource_filename` (setuptools >= 81), `np.float_`
(NumPy 2), scikit-image's `gaussian(multichannel=True)` (now
`channel_axis=-1`) and `scipy.ndimage.interpolation` (now `scipy.ndimage`).
Needs `pip install --no-deps imagecorruptions==1.1.2 opencv-python-headless`.
"""

import argparse
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import sys
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import peer_references as refs
from jaxaudit.corruptions import spec

IMAGENET_IMAGES = 1
CIFAR_IMAGES = 8


def _patch_environment() -> None:
  """What imagecorruptions 1.1.2 and make_cifar_c.py import from libraries
  that have since dropped it (see the module docstring)."""
  import scipy.ndimage
  import skimage.filters
  np.float_ = np.float64
  sys.modules.setdefault("scipy.ndimage.interpolation", scipy.ndimage)
  if "pkg_resources" not in sys.modules:
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = lambda package, name: os.path.join(
        os.path.dirname(sys.modules[package].__file__), name)
    sys.modules["pkg_resources"] = shim
  gaussian = skimage.filters.gaussian

  def gaussian_multichannel(*args, multichannel=None, **kwargs):
    if multichannel:
      kwargs["channel_axis"] = -1
    return gaussian(*args, **kwargs)

  skimage.filters.gaussian = gaussian_multichannel


def _imagenet_reference() -> tuple[types.ModuleType, str]:
  import imagecorruptions.corruptions as module
  import skimage.filters
  module.gaussian = skimage.filters.gaussian
  return module, "imagecorruptions " + importlib.metadata.version(
      "imagecorruptions")


def _cifar_reference(path: str) -> tuple[types.ModuleType, str]:
  """make_cifar_c.py's helpers and corruptions, without its imports of
  torch, torchvision and Wand (motion blur and snow, which need
  ImageMagick, are left out) and without its dataset loop."""
  import cv2
  import skimage as sk
  import skimage.filters
  from PIL import Image
  from scipy.ndimage import map_coordinates
  from scipy.ndimage import zoom as scizoom
  with open(path) as f:
    source = f.read()
  start = source.index("def disk(")
  wand = source.index("# Tell Python about the C method")
  plasma = source.index("# modification of https://github.com/FLHerne")
  end = source.index("# /////////////// End Distortions")
  code = source[start:wand] + source[plasma:end]
  module = types.ModuleType("make_cifar_c")
  module.__dict__.update(np=np, sk=sk, gaussian=skimage.filters.gaussian,
                         cv2=cv2, scizoom=scizoom, PILImage=Image,
                         map_coordinates=map_coordinates, BytesIO=io.BytesIO)
  # pylint: disable-next=exec-used
  exec(compile(code, path, "exec"), module.__dict__)
  digest = hashlib.sha256(source.encode()).hexdigest()
  return module, f"make_cifar_c.py sha256 {digest}"


def _inputs(parameter_set: str) -> np.ndarray:
  if parameter_set == "imagenet":
    return refs.imagenet_inputs(IMAGENET_IMAGES)
  images, _ = refs.cifar_inputs(CIFAR_IMAGES)
  return np.round(images * 255).astype(np.uint8)


def record(parameter_set: str, make_cifar_c: str) -> None:
  from PIL import Image
  module, peer = (_imagenet_reference() if parameter_set == "imagenet"
                  else _cifar_reference(make_cifar_c))
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
  _patch_environment()
  for parameter_set in args.only.split(","):
    if parameter_set == "cifar" and not args.make_cifar_c:
      parser.error("--make_cifar_c is required for the cifar references")
    record(parameter_set, args.make_cifar_c)
    print(json.dumps({"recorded": parameter_set}))


if __name__ == "__main__":
  main()
