"""The deterministic corruptions against the reference code's own outputs
(tests/references/corruptions_<set>.*, scripts/record_corruption_references.py):
ImageNet parameters against imagecorruptions 1.1.2 on an ImageNet-sample photo
at 224 x 224, CIFAR parameters against make_cifar_c.py on 8 CIFAR-10 test
images; every severity within 2/255 of the reference at every pixel."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from benchmarks import peer_references as refs
from conftest import require_shared
from jaxaudit.corruptions import spec

TOLERANCE = 2  # 8-bit levels.


def _inputs(record: dict) -> np.ndarray:
  if record["parameter_set"] == "imagenet":
    require_shared(refs.IMAGENET_SAMPLE)
    images = refs.imagenet_inputs(record["num_images"])
  else:
    require_shared(refs.CIFAR_IMAGES)
    floats, _ = refs.cifar_inputs(record["num_images"])
    images = np.round(floats * 255).astype(np.uint8)
  assert refs.sha256_arrays(images) == record["inputs_sha256"], (
      f"inputs changed since `{record['command']}`")
  return images


def _cases():
  for parameter_set in spec.PARAMETER_SETS:
    for key in refs.load(f"corruptions_{parameter_set}")["results"]:
      yield parameter_set, key.split("/")[0]


@pytest.mark.parametrize("parameter_set,name", sorted(set(_cases())))
def test_deterministic_corruption_matches_the_reference(parameter_set, name):
  record = refs.load(f"corruptions_{parameter_set}")
  images = _inputs(record)
  outputs = np.load(refs.path_of(f"corruptions_{parameter_set}")[:-5]
                    + ".npz")
  entry = spec.CORRUPTIONS[name]
  height, width = images.shape[1:3]
  built = jax.tree.map(jnp.asarray, entry.build(name, parameter_set, height,
                                                width))
  keys = jax.random.split(jax.random.key(0), len(images))
  corrupt = jax.jit(lambda x, sev: spec.to_levels(
      entry.fn(x, keys, entry.at_severity(built, sev))))
  x = jnp.asarray(images, jnp.float32) / 255
  for severity in range(1, spec.SEVERITIES + 1):
    png = outputs[f"{name}/{severity}"].tobytes()
    theirs = np.asarray(Image.open(io.BytesIO(png))).reshape(images.shape)
    ours = np.asarray(corrupt(x, jnp.int32(severity)))
    worst = int(np.abs(ours.astype(int) - theirs).max())
    assert worst <= TOLERANCE, (name, severity, worst)
    # The corruption changed the image (a no-op would pass no severity).
    assert np.abs(theirs.astype(int) - images).max() > TOLERANCE
