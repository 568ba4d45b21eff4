"""The XLA options jaxaudit compiles with keep convolutions out of YNNPACK."""

import jax
import numpy as np
import pytest

from jaxaudit import compile_options


def _conv(x, w):
  return jax.lax.conv_general_dilated(
      x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _input_gradient(x, w, cotangent):
  return jax.vjp(lambda v: _conv(v, w), x)[1](cotangent)[0]


def test_convolutions_stay_with_xla_and_give_the_same_numbers():
  if not compile_options.compiler_options():
    pytest.skip("not XLA:CPU, or it has no YNNPACK fusion option (nothing to "
                "undo)")
  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], (8, 16, 16, 64))
  w = jax.random.normal(keys[1], (3, 3, 64, 64)) / 24.0
  cotangent = jax.random.normal(keys[2], (8, 16, 16, 64))
  for fn, args in ((_conv, (x, w)), (_input_gradient, (x, w, cotangent))):
    ours = compile_options.jit(fn)
    hlo = ours.lower(*args).compile().as_text()
    assert "convolution(" in hlo and "__ynn_fusion" not in hlo, fn.__name__
    np.testing.assert_allclose(ours(*args), jax.jit(fn)(*args),
                               rtol=1e-5, atol=1e-4)
