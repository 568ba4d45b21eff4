"""The random corruptions against the reference code's own draws
(`scripts/record_random_corruptions.py`): the set's model's top-1 on the
same 200 images at severity 3, jaxaudit's mean over as many draws as the
record's against the record's mean, within 2 points; and the outputs' mean,
spread and mean change at every severity, over the record's images and
draws, within 2/255 (the deterministic corruptions' per-pixel bound).

A single draw moves accuracy by several points (CIFAR's elastic transform:
0.685 to 0.785 over three of the reference's), so both sides average many.
Needs the shared images and ResNet-20 weights (`../shared/data`).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import corruption_peers as peers
from benchmarks import peer_references as refs
from conftest import CIFAR_DIR, require_shared
from jaxaudit.corruptions import spec

ACCURACY_POINTS = 0.02
STATS_TOLERANCE = 2 / 255


def _record(parameter_set: str) -> dict:
  return refs.load(f"corruptions_random_{parameter_set}")


@functools.cache
def _corrupter(name: str, parameter_set: str, size: int):
  """Jitted uint8 [B, S, S, 3], keys [B], severity -> uint8 corrupted."""
  entry = spec.CORRUPTIONS[name]
  built = jax.tree.map(jnp.asarray, entry.build(name, parameter_set, size,
                                                size))

  def corrupt(images, keys, severity):
    x = images.astype(jnp.float32) / 255
    out = spec.corrupt(entry, built, x, keys, severity[None])[0]
    return spec.to_levels(out)

  return jax.jit(corrupt)


def _draw(name: str, parameter_set: str, images: np.ndarray, draw: int,
          severity: int) -> np.ndarray:
  corrupt = _corrupter(name, parameter_set, images.shape[1])
  keys = jax.random.split(jax.random.key(draw), len(images))
  return np.concatenate([
      np.asarray(corrupt(images[i:i + 100], keys[i:i + 100],
                         jnp.int32(severity)))
      for i in range(0, len(images), 100)])


@pytest.mark.slow
@pytest.mark.parametrize("parameter_set", ["cifar"])
def test_random_corruptions_match_the_references(parameter_set):
  require_shared(CIFAR_DIR)
  record = _record(parameter_set)
  images, labels = peers.random_inputs(parameter_set)
  assert refs.sha256_arrays(images, labels) == record["inputs_sha256"]
  predict = peers.predictor(parameter_set)
  assert np.mean(predict(images) == labels) == pytest.approx(
      record["clean_accuracy"])
  problems = []
  for name, want in record["results"].items():
    draws = len(want["accuracy_per_draw"])
    got = np.mean([np.mean(predict(_draw(name, parameter_set, images, d,
                                         record["severity"])) == labels)
                   for d in range(draws)])
    reference = np.mean(want["accuracy_per_draw"])
    if abs(got - reference) > ACCURACY_POINTS:
      problems.append(f"{name}: top-1 {got:.3f} vs reference "
                      f"{reference:.3f} over {draws} draws")
    few = images[:record["stats_images"]]
    stat_draws = range(record["stats_draws"])
    for severity, stats in want["stats"].items():
      mine = peers.output_stats(
          np.concatenate([_draw(name, parameter_set, few, d, int(severity))
                          for d in stat_draws]),
          np.concatenate([few] * len(stat_draws)))
      for key, value in stats.items():
        if abs(mine[key] - value) > STATS_TOLERANCE:
          problems.append(f"{name} severity {severity}: {key} "
                          f"{mine[key]:.4f} vs reference {value:.4f}")
  assert set(record["results"]) == {n for n, e in spec.CORRUPTIONS.items()
                                    if e.random}
  assert not problems, "\n".join(problems)
