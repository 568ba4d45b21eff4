"""The transfer step on the shipped digits CNN: at the model's own 16 x 16
size it predicts exactly the logits' argmax (no resize), and on the same
digits at 32 x 32 it resizes them back (bilinear, antialiased) and still
classifies nearly all as at 16 x 16: at least 90 % when each pixel was
repeated 2 x 2, at least 80 % when bilinearly up-sampled (the antialiased
round trip is a blur: measured 0.97 and 0.89 on these 64 digits)."""

import jax
import jax.numpy as jnp
import numpy as np

import digits_model
from jaxaudit.comparison import transfer

N = 64


def test_own_size_is_the_logits_argmax():
  model, params, images, labels, _ = digits_model.digits(N)
  step = jax.jit(transfer.predict_step(model))
  got = step(params, {"image": images})["prediction"]
  assert got.dtype == jnp.int32 and got.shape == (N,)
  want = np.asarray(jnp.argmax(model.logits(params, images), -1))
  np.testing.assert_array_equal(np.asarray(got), want)
  assert (want == np.asarray(labels)).mean() >= 0.85  # A real classifier.


def test_larger_images_are_resized_to_the_models_input():
  model, params, images, labels, _ = digits_model.digits(N)
  labels = np.asarray(labels)
  step = jax.jit(transfer.predict_step(model))
  own = np.asarray(step(params, {"image": images})["prediction"])
  # The same digits at 32 x 32, each pixel a 2 x 2 block (no new detail): the
  # step's antialiased down-sampling weighs each block 3/8, 3/8 and its
  # neighbours 1/8, 1/8 per axis, a slight blur; 62 of the 64 stay (the
  # measured 0.97; 0.94 on all 500 test digits).
  blocks = jnp.repeat(jnp.repeat(images, 2, 1), 2, 2)
  got = np.asarray(step(params, {"image": blocks})["prediction"])
  assert got.shape == (N,)
  assert (got == own).mean() >= 0.9
  assert (got == labels).mean() >= (own == labels).mean() - 0.05
  # Bilinear up-sampling blurs once more: 57 of 64 stay (0.87 on 500, where
  # accuracy falls from 0.948 to 0.848).
  smooth = jax.image.resize(images, (N, 32, 32, 3), "bilinear")
  got = np.asarray(step(params, {"image": smooth})["prediction"])
  assert (got == own).mean() >= 0.8
  # Either way the step's resize is exactly the documented one.
  for large in (blocks, smooth):
    back = jax.image.resize(large, (N, 16, 16, 3), "bilinear", antialias=True)
    np.testing.assert_array_equal(
        np.asarray(step(params, {"image": large})["prediction"]),
        np.asarray(jnp.argmax(model.logits(params, back), -1)))


def test_float64_images_are_cast_to_float32():
  # The step takes [0, 1] pixels of any float dtype, cast, not rescaled.
  model, params, images, _, _ = digits_model.digits(N)
  step = transfer.predict_step(model)
  as64 = np.asarray(images, np.float64)
  np.testing.assert_array_equal(
      np.asarray(step(params, {"image": as64})["prediction"]),
      np.asarray(step(params, {"image": images})["prediction"]))
