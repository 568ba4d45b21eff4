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
  (setuptools >= 81), `np.float_` and the binary mode of `np.fromstring`
  (NumPy 2: `np.frombuffer`, copied), scikit-image's
  `gaussian(multichannel=True)` (now `channel_axis=-1`) and
  `scipy.ndimage.interpolation` (now `scipy.ndimage`); nothing else."""
  import scipy.ndimage
  import skimage.filters
  np.float_ = np.float64
  fromstring = np.fromstring

  def binary_fromstring(string, dtype=float, count=-1, *, sep=""):
    if sep == "":
      return np.frombuffer(string, dtype, count).copy()
    return fromstring(string, dtype, count, sep=sep)

  np.fromstring = binary_fromstring
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


def _wand() -> dict | None:
  """What make_cifar_c.py's motion blur and snow import from Wand (which
  needs ImageMagick: apt-get install imagemagick; pip install Wand), or
  None where it is not installed."""
  try:
    import ctypes
    import wand.color
    import wand.image
    from wand.api import library
  except ImportError:
    return None
  return dict(WandImage=wand.image.Image, wandlibrary=library,
              WandColor=wand.color, ctypes=ctypes)


def _cifar(path: str) -> tuple[types.ModuleType, str]:
  """make_cifar_c.py's helpers and corruptions, without its imports of
  torch and torchvision and without its dataset loop; motion blur and snow
  only where Wand is installed."""
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
  wand_names = _wand()
  code = (source[start:end] if wand_names
          else source[start:wand] + source[plasma:end])
  module = types.ModuleType("make_cifar_c")
  module.__dict__.update(np=np, sk=sk, gaussian=skimage.filters.gaussian,
                         cv2=cv2, scizoom=scizoom, PILImage=Image,
                         map_coordinates=map_coordinates, BytesIO=io.BytesIO,
                         **(wand_names or {}))
  # pylint: disable-next=exec-used
  exec(compile(code, path, "exec"), module.__dict__)
  digest = hashlib.sha256(source.encode()).hexdigest()
  peer = f"make_cifar_c.py sha256 {digest}"
  if wand_names:
    from wand.version import MAGICK_VERSION
    peer += (f", Wand {importlib.metadata.version('Wand')} with "
             f"{MAGICK_VERSION}")
  return module, peer


def reference(parameter_set: str, make_cifar_c: str = ""
              ) -> tuple[types.ModuleType, str]:
  """(the module whose functions are the corruptions, what it is) for
  "imagenet" or "cifar" (`make_cifar_c`: the file's path)."""
  if parameter_set == "imagenet":
    return _imagenet()
  if not make_cifar_c:
    raise ValueError("the cifar references need the path of make_cifar_c.py")
  return _cifar(make_cifar_c)


# The random corruptions' cross-check: the model's accuracy on this many
# images at this severity, and output statistics at every severity over the
# first STATS_IMAGES of them, STATS_DRAWS draws each. A frost photograph or
# a fog fractal moves a whole image's statistics (over 16 ImageNet photos
# and 2 draws the two sides' mean brightness differed by up to 7/255, both
# ways, from one severity to the next), so those two take MANY_DRAWS on
# ImageNet: 4,000 corrupted images a severity (CIFAR's 5 draws of 200 are
# 1,000).
RANDOM_IMAGES = 200
RANDOM_SEVERITY = 3
STATS_IMAGES = {"cifar": 200, "imagenet": 16}
STATS_DRAWS = {"cifar": 5, "imagenet": 2}
MANY_DRAWS = {("imagenet", "fog"): 250, ("imagenet", "frost"): 250}


def stats_draws(parameter_set: str, name: str) -> int:
  """Draws of the first STATS_IMAGES images the statistics of corruption
  `name` span."""
  return MANY_DRAWS.get((parameter_set, name), STATS_DRAWS[parameter_set])


MODELS = {"imagenet": "efficientnet_lite0", "cifar": "cifar_resnet20"}


def random_inputs(parameter_set: str) -> tuple[np.ndarray, np.ndarray]:
  """(uint8 [RANDOM_IMAGES, S, S, 3], labels int64) both sides feed: the
  first ImageNet-sample photos (one per class, in wnid order: image i is
  class i) at 224, or the first shared CIFAR-10 test images."""
  from benchmarks import peer_references as refs
  if parameter_set == "imagenet":
    return (refs.imagenet_inputs(RANDOM_IMAGES),
            np.arange(RANDOM_IMAGES, dtype=np.int64))
  images, labels = refs.cifar_inputs(RANDOM_IMAGES)
  return np.round(images * 255).astype(np.uint8), labels


def predictor(parameter_set: str):
  """uint8 images [N, S, S, 3] -> int64 [N] top-1 classes of the set's
  model (Lite0 with its packaged weights, the shared ResNet-20), jitted."""
  import jax
  import jax.numpy as jnp
  from benchmarks import peer_references as refs
  from jaxaudit import job_config
  from jaxaudit.models import load_model
  fields = {"name": MODELS[parameter_set]}
  if parameter_set == "cifar":
    fields["checkpoint"] = refs.CIFAR_WEIGHTS
  model, params = load_model(job_config.model_section(**fields))
  forward = jax.jit(lambda p, x: jnp.argmax(
      model.logits(p, x.astype(jnp.float32) / 255), -1))

  def predict(images: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(forward(params, images[i:i + 50]))
                           for i in range(0, len(images), 50)]).astype(
                               np.int64)

  return predict


def jaxaudit_corrupter(name: str, parameter_set: str, size: int):
  """jaxaudit's corruption, jitted: uint8 [B, S, S, 3], keys [B], severity
  -> uint8 [B, S, S, 3] (8-bit as the references store them)."""
  import jax
  import jax.numpy as jnp
  from jaxaudit.corruptions import spec
  entry = spec.CORRUPTIONS[name]
  built = jax.tree.map(jnp.asarray, entry.build(name, parameter_set, size,
                                                size))

  def corrupt(images, keys, severity):
    x = images.astype(jnp.float32) / 255
    return spec.to_levels(spec.corrupt(entry, built, x, keys,
                                       severity[None])[0])

  return jax.jit(corrupt)


def jaxaudit_draw(corrupt, images: np.ndarray, draw: int,
                  severity: int) -> np.ndarray:
  """One jaxaudit draw (keys from `jax.random.key(draw)`) of `corrupt`
  (`jaxaudit_corrupter`) on uint8 images [N, S, S, 3], 100 at a time."""
  import jax
  import jax.numpy as jnp
  keys = jax.random.split(jax.random.key(draw), len(images))
  return np.concatenate([
      np.asarray(corrupt(images[i:i + 100], keys[i:i + 100],
                         jnp.int32(severity)))
      for i in range(0, len(images), 100)])


def draws_stats(corrupt_draw, images: np.ndarray, severity: int,
                draws: int) -> dict:
  """Mean and standard deviation of the corrupted pixels and their mean
  absolute change, on [0, 1], over `draws` draws of `corrupt_draw(images,
  draw, severity)` on `images` (uint8 [N, S, S, 3]): sums accumulated a
  draw at a time, so that thousands of ImageNet draws fit in memory."""
  clean = images.astype(np.float64) / 255
  total = squares = change = 0.0
  for draw in range(draws):
    x = corrupt_draw(images, draw, severity).astype(np.float64) / 255
    total += x.sum()
    squares += np.square(x).sum()
    change += np.abs(x - clean).sum()
  count = clean.size * draws
  mean = total / count
  return {"mean": round(mean, 5),
          "std": round(float(np.sqrt(max(squares / count - mean ** 2, 0))), 5),
          "change": round(change / count, 5)}


def severities_stats(corrupt_draw, images: np.ndarray, draws: int) -> dict:
  """{"1": `draws_stats`, ..., "5": ...}: the statistics at every severity,
  as the record holds them."""
  from jaxaudit.corruptions import spec
  return {str(s): draws_stats(corrupt_draw, images, s, draws)
          for s in range(1, spec.SEVERITIES + 1)}
