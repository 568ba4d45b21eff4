"""Records the reference code's random corruptions for the shift cross-check.

  python scripts/record_random_corruptions.py --make_cifar_c=<path>

For each random corruption (noise, glass and motion blur, snow, frost, fog,
elastic, spatter) and parameter set: the set's model's top-1 on the first
200 images (`benchmarks.corruption_peers.random_inputs`) corrupted at
severity 3 by the reference, over many of its draws, 50 on CIFAR and 10 on
ImageNet (2 of ImageNet's glass blur, 5 s an image), seeded with numpy's
global seed 0, 1, ... where it draws from it (scikit-image's random_noise,
which impulse noise calls, has its own generator); and the output
statistics at every severity over the first images (all 200 on CIFAR, 16 on
ImageNet) and a few draws (250 of ImageNet's fog and frost,
`benchmarks.corruption_peers.MANY_DRAWS`). On ImageNet jaxaudit's side is
recorded too, as many draws (keys `jax.random.key(draw)`): at 224 pixels it
is too slow for CI, where the test recomputes its statistics over the first
few draws (`tie_stats` where the record spans more) to tie the code to the
record.
Writes tests/references/corruptions_random_<set>.json after each corruption
(`--resume` continues an interrupted run).

The same environment as `scripts/record_corruption_references.py`; for
CIFAR's motion blur and snow also ImageMagick and Wand (`apt-get install
imagemagick`, `pip install Wand`), which make_cifar_c.py calls; its frost
reads the photographs in jaxaudit/corruptions/frost_images/ (the script runs
there).
"""

import argparse
import functools
import importlib.metadata
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import corruption_peers as peers
from benchmarks import peer_references as refs
from jaxaudit.corruptions import frost, spec

# The references' draws per corruption: accuracy over 200 images moves by
# several points from one draw to the next (CIFAR's elastic transform: 0.685
# to 0.785 in three), so the cross-check compares means over many.
DRAWS = {"cifar": 50, "imagenet": 10}
SLOW = {("imagenet", "glass_blur"): 2}


def _corrupt(fn, images: np.ndarray, severity: int, seed: int) -> np.ndarray:
  from PIL import Image
  np.random.seed(seed)
  return np.stack([np.uint8(np.asarray(fn(Image.fromarray(x), severity)))
                   for x in images])


def _side(corrupt_draw, images, labels, predict, parameter_set: str,
          name: str, draws: int) -> dict:
  """One side's accuracy per draw at the cross-check's severity and its
  output statistics at every severity (`corrupt_draw(images, draw,
  severity)` -> uint8), over `peers.stats_draws` draws."""
  accuracy = [round(float(np.mean(predict(corrupt_draw(
      images, d, peers.RANDOM_SEVERITY)) == labels)), 4)
              for d in range(draws)]
  stats_draws = peers.stats_draws(parameter_set, name)
  return {"accuracy_per_draw": accuracy, "stats_draws": stats_draws,
          "stats": peers.severities_stats(
              corrupt_draw, images[:peers.STATS_IMAGES[parameter_set]],
              stats_draws)}


def _write(name: str, peer: str, parameter_set: str, images, labels,
           clean_accuracy: float, results: dict) -> None:
  versions = {p: importlib.metadata.version(p) for p in (
      "numpy", "scipy", "scikit-image", "opencv-python-headless", "pillow",
      "jax")}
  refs.write(name, dict(
      peer=peer, versions=versions, parameter_set=parameter_set,
      model=peers.MODELS[parameter_set],
      inputs_sha256=refs.sha256_arrays(images, labels),
      num_images=len(images), severity=peers.RANDOM_SEVERITY,
      stats_images=peers.STATS_IMAGES[parameter_set],
      stats_draws=peers.STATS_DRAWS[parameter_set],
      clean_accuracy=clean_accuracy,
      command="python scripts/record_random_corruptions.py "
              f"--only={parameter_set}",
      results=results))


def record(parameter_set: str, make_cifar_c: str, only: set[str],
           resume: bool) -> None:
  """Records every random corruption of `parameter_set` (those in `only`,
  if given; with `resume`, those the record does not hold yet), writing the
  record after each, so that a long run can be resumed."""
  module, peer = peers.reference(parameter_set, make_cifar_c)
  images, labels = peers.random_inputs(parameter_set)
  # make_cifar_c.py opens ./frost<k>.png: the photographs jaxaudit ships.
  os.chdir(frost.FOLDER)
  predict = peers.predictor(parameter_set)
  clean = round(float((predict(images) == labels).mean()), 4)
  name = f"corruptions_random_{parameter_set}"
  results = (refs.load(name)["results"]
             if (only or resume) and os.path.exists(refs.path_of(name))
             else {})
  for corruption, entry in spec.CORRUPTIONS.items():
    if not entry.random or not hasattr(module, corruption):
      continue
    if (only and corruption not in only) or (resume and corruption
                                             in results):
      continue
    start = time.time()
    fn = getattr(module, corruption)
    draws = SLOW.get((parameter_set, corruption), DRAWS[parameter_set])
    results[corruption] = _side(
        lambda x, d, s, fn=fn: _corrupt(fn, x, s, d), images, labels,
        predict, parameter_set, corruption, draws)
    if parameter_set == "imagenet":
      # Too slow for CI at 224 pixels: jaxaudit's side is recorded too, and
      # the test ties the code it runs to it by the statistics.
      corrupt = peers.jaxaudit_corrupter(corruption, parameter_set,
                                         images.shape[1])
      draw = functools.partial(peers.jaxaudit_draw, corrupt)
      results[corruption]["jaxaudit"] = _side(
          draw, images, labels, predict, parameter_set, corruption, draws)
      if results[corruption]["stats_draws"] > peers.STATS_DRAWS[
          parameter_set]:
        # What CI recomputes: the statistics over the first draws.
        results[corruption]["jaxaudit"]["tie_stats"] = peers.severities_stats(
            draw, images[:peers.STATS_IMAGES[parameter_set]],
            peers.STATS_DRAWS[parameter_set])
    _write(name, peer, parameter_set, images, labels, clean,
           dict(sorted(results.items(),
                       key=lambda kv: list(spec.CORRUPTIONS).index(kv[0]))))
    print(json.dumps({corruption: results[corruption]["accuracy_per_draw"],
                      "seconds": round(time.time() - start)}), flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--only", default="imagenet,cifar")
  parser.add_argument("--corruptions", default="",
                      help="re-record these only, keep the others")
  parser.add_argument("--resume", action="store_true",
                      help="record only the corruptions the record lacks "
                           "(after an interrupted run)")
  parser.add_argument("--make_cifar_c", default="",
                      help="path of make_cifar_c.py (github.com/hendrycks/"
                           "robustness, ImageNet-C/create_c/)")
  args = parser.parse_args()
  peers.patch_environment()
  only = set(filter(None, args.corruptions.split(",")))
  for parameter_set in args.only.split(","):
    if parameter_set == "cifar" and not args.make_cifar_c:
      parser.error("--make_cifar_c is required for the cifar references")
    record(parameter_set, args.make_cifar_c, only, args.resume)
    print(json.dumps({"recorded": parameter_set}))


if __name__ == "__main__":
  main()
