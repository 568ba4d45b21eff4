"""Records exact backward selection against BGSIS on CIFAR-10 ResNet-20 images.

  python scripts/record_sis_exact.py [--images=32]

Both select on the same 2 x 2-pixel features (256) of the first N shared
CIFAR-10 test images, with the settings of `configs/cifar10_sis.py` (threshold
0.99, BGSIS removing 1% of the features per step, mean baseline). Exact
selection costs 32,896 ResNet-20 forward passes an image (about 40 s on two
CPU cores), too slow for CI: the record (tests/references/sis_exact_cifar.json)
holds every image's rankings and outputs and the summary, with the sha256 of the
inputs and weights; tests/sis/test_exact_cifar.py re-runs the first image and
checks the record. Needs ../shared/data.
"""

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import peer_references as refs
from configs import cifar10_sis
from jaxaudit import compile_options
from jaxaudit.models.loading import load_model
from jaxaudit.sis import masks
from jaxaudit.sis import subsets
from jaxaudit.stages import sis as sis_stage

NAME = "sis_exact_cifar"


def settings_from_config() -> tuple[subsets.ExactSettings, list[str], str]:
  """(comparison settings, subset names, baseline kind) of configs/cifar10_sis.py."""
  config = cifar10_sis.get_config()
  names = [sis_stage.fraction_name(f) for f in config.sis.subset_fractions]
  return sis_stage.exact_settings(config, 32), names, config.sis.baseline


def compare(images: np.ndarray, batch: int) -> dict[str, np.ndarray]:
  """`subsets.compare_exact` on float32 images [N, 32, 32, 3], in batches."""
  settings, _, baseline_kind = settings_from_config()
  model, params = load_model(ml_collections.ConfigDict(dict(
      name="cifar_resnet20", checkpoint=refs.CIFAR_WEIGHTS)))
  baseline = jnp.asarray(masks.baseline_pixel(model, baseline_kind))
  fn = compile_options.jit(lambda p, x: subsets.compare_exact(
      model.logits_fn(p), x, baseline, settings))
  parts = [jax.tree.map(np.asarray, fn(params, jnp.asarray(images[i:i + batch])))
           for i in range(0, len(images), batch)]
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--images", type=int, default=32)
  parser.add_argument("--batch", type=int, default=8)
  args = parser.parse_args()
  images, labels = refs.cifar_inputs(args.images)
  start = time.time()
  out = compare(images, args.batch)
  seconds = time.time() - start
  settings, names, _ = settings_from_config()
  summary = subsets.summarize_exact(out | {"label": labels}, names, settings)
  record = {
      "name": NAME,
      "command": f"python scripts/record_sis_exact.py --images={args.images}",
      "jax_version": jax.__version__,
      "inputs_sha256": refs.sha256_inputs(images, labels),
      "weights_sha256": refs.sha256_file(refs.CIFAR_WEIGHTS),
      "settings": settings._asdict() | {"config": "configs/cifar10_sis.py"},
      "seconds": round(seconds, 1),
      "summary": summary,
      "results": {k: refs.rounded(v) if v.dtype.kind == "f" else v.tolist()
                  for k, v in out.items()} | {"label": labels.tolist()},
  }
  path = refs.write(NAME, record)
  print(json.dumps(summary, indent=1))
  print(f"{args.images} images in {seconds:.0f} s -> {path}")


if __name__ == "__main__":
  main()
