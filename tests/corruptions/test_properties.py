"""Every corruption on real photographs (scikit-image's, so it runs
anywhere): in range, changed at every severity, one compiled program for
all five severities, reproducible from the image's key and independent of
the batch it is in; and the references' glass-blur shuffle, which overwrites
rather than swaps."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
import skimage.transform

from jaxaudit import compile_count
from jaxaudit.errors import ConfigError
from jaxaudit.corruptions import blur, spec, tables

SIZES = {"cifar": 32, "imagenet": 64}


@functools.cache
def _photos(size: int) -> np.ndarray:
  """Three real photographs [3, size, size, 3] in [0, 1]."""
  photos = [skimage.data.astronaut(), skimage.data.coffee(),
            skimage.data.chelsea()]
  return np.stack([skimage.transform.resize(
      p[:min(p.shape[:2]), :min(p.shape[:2])], (size, size),
      anti_aliasing=True) for p in photos]).astype(np.float32)


def _corrupt(name: str, parameter_set: str):
  entry = spec.CORRUPTIONS[name]
  size = SIZES[parameter_set]
  built = jax.tree.map(jnp.asarray, entry.build(name, parameter_set, size,
                                                size))
  return jax.jit(lambda x, keys, severity: entry.fn(
      x, keys, entry.at_severity(built, severity)))


@pytest.mark.parametrize("parameter_set", spec.PARAMETER_SETS)
@pytest.mark.parametrize("name", sorted(spec.CORRUPTIONS))
def test_corruption_is_one_program_in_range_and_reproducible(
    name, parameter_set):
  entry = spec.CORRUPTIONS[name]
  x = jnp.asarray(_photos(SIZES[parameter_set]))
  keys = jax.random.split(jax.random.key(7), len(x))
  corrupt = _corrupt(name, parameter_set)
  severities = [jnp.int32(s) for s in range(1, spec.SEVERITIES + 1)]
  with compile_count.counting() as stats:
    outs = [np.asarray(corrupt(x, keys, s)) for s in severities]
  assert stats.count == 1, stats.as_dict()
  changes = []
  for out in outs:
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    changes.append(float(np.abs(out - np.asarray(x)).mean()))
  assert min(changes) > 0.5 / 255, changes
  # The mildest and the strongest differ (the change is not monotone in
  # the severity: saturate desaturates at 1-2, CIFAR's elastic jitter
  # shrinks with it; CIFAR's motion blur 3 and 4 differ by taps of 1e-8).
  assert abs(changes[-1] - changes[0]) > 0.5 / 255, changes
  again = np.asarray(corrupt(x, keys, jnp.int32(3)))
  np.testing.assert_array_equal(again, outs[2])
  # One image alone with its own key: what it got in the batch.
  alone = np.asarray(corrupt(x[1:2], keys[1:2], jnp.int32(3)))
  np.testing.assert_allclose(alone[0], outs[2][1], atol=1e-5)
  other = np.asarray(corrupt(x, jax.random.split(jax.random.key(8), len(x)),
                             jnp.int32(3)))
  assert entry.random == (not np.array_equal(other, outs[2]))


def test_glass_blur_shuffle_overwrites_like_the_references():
  """CIFAR severity 1 (sigma 0.05: the Gaussian is the identity): every
  output pixel is an input pixel, and some input pixels are lost, as in the
  references' `x[h, w], x[h', w'] = x[h', w'], x[h, w]` on NumPy views (a
  true swap would be a permutation)."""
  index = np.arange(32 * 32)
  image = np.stack([index % 256, index // 256, np.zeros_like(index)],
                   -1).reshape(1, 32, 32, 3).astype(np.float32) / 255
  built = blur.glass_params(tables.CIFAR["glass_blur"], 32, 32)
  p = {k: jnp.asarray(v[0]) for k, v in built.items()}
  out = np.asarray(blur.glass_blur(jnp.asarray(image),
                                   jax.random.split(jax.random.key(0), 1), p))
  pixels = {tuple(v) for v in np.round(out[0] * 255).astype(int).reshape(-1,
                                                                        3)}
  originals = {tuple(v) for v in np.round(image[0] * 255).astype(
      int).reshape(-1, 3)}
  assert pixels <= originals
  assert 0.5 * len(originals) < len(pixels) < len(originals)


@pytest.mark.parametrize("delta,iterations", [(1, 2), (2, 3)])
def test_glass_blur_shuffle_is_the_references_loop(delta, iterations):
  """The shuffle resolved in parallel equals the references' loop step by
  step in NumPy (rows, then columns, from the far edge; each step's
  (dx, dy) from the image's key folded with the step's number)."""
  size, batch = 24, 3
  images = jax.random.uniform(jax.random.key(1), (batch, size, size, 3))
  keys = jax.random.split(jax.random.key(2), batch)
  got = np.asarray(jax.jit(blur._shuffle_pixels)(
      images, keys, jnp.int32(delta), jnp.int32(iterations)))
  span = size - 2 * delta
  steps = jnp.arange(iterations * span * span)
  offsets = np.asarray(jax.vmap(lambda k: jax.vmap(
      lambda t: jax.random.randint(jax.random.fold_in(k, t), (2,), -delta,
                                   delta))(steps))(keys))
  want = np.array(images)
  for b in range(batch):
    t = 0
    for _ in range(iterations):
      for h in range(size - delta, delta, -1):
        for w in range(size - delta, delta, -1):
          dx, dy = offsets[b, t]
          want[b, h, w] = want[b, h + dy, w + dx]
          t += 1
  np.testing.assert_array_equal(got, want)
  assert not np.array_equal(got, np.asarray(images))


def test_frost_too_small_for_the_image_names_the_parameter_set():
  with pytest.raises(ConfigError, match="cifar parameters"):
    spec.CORRUPTIONS["frost"].build("frost", "cifar", 224, 224)
