"""The reference corruption code, loaded as the recording script and the
shift benchmark run it: imagecorruptions 1.1.2 (the ImageNet parameters) and
make_cifar_c.py of github.com/hendrycks/robustness (the CIFAR ones; not a
package: pass its path), with the patches newer libraries need.

  pip install --no-deps imagecorruptions==1.1.2 opencv-python-headless
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import sys
import types

import numpy as np


def patch_environment() -> None:
  """What imagecorruptions 1.1.2 and make_cifar_c.py import from libraries
  that have since dropped it: `pkg_resources.resource_filename`
  (setuptools >= 81), `np.float_` (NumPy 2), scikit-image's
  `gaussian(multichannel=True)` (now `channel_axis=-1`) and
  `scipy.ndimage.interpolation` (now `scipy.ndimage`); nothing else."""
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


def _imagenet() -> tuple[types.ModuleType, str]:
  import imagecorruptions.corruptions as module
  import skimage.filters
  module.gaussian = skimage.filters.gaussian
  return module, "imagecorruptions " + importlib.metadata.version(
      "imagecorruptions")


def _cifar(path: str) -> tuple[types.ModuleType, str]:
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


def reference(parameter_set: str, make_cifar_c: str = ""
              ) -> tuple[types.ModuleType, str]:
  """(the module whose functions are the corruptions, what it is) for
  "imagenet" or "cifar" (`make_cifar_c`: the file's path)."""
  if parameter_set == "imagenet":
    return _imagenet()
  if not make_cifar_c:
    raise ValueError("the cifar references need the path of make_cifar_c.py")
  return _cifar(make_cifar_c)
