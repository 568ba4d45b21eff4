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


def test_llvm_level_one_gives_the_default_levels_numbers():
  """The optimisation level changes how fast XLA:CPU's code runs, not what
  it computes (to float32 rounding): a convolution stack's input gradient."""
  options = compile_options.compiler_options()
  if "xla_backend_optimization_level" not in options:
    pytest.skip("not XLA:CPU, or it does not take the LLVM level option")
  assert options["xla_backend_optimization_level"] == 1
  keys = jax.random.split(jax.random.key(1), 3)
  x = jax.random.normal(keys[0], (4, 16, 16, 8))
  w = jax.random.normal(keys[1], (3, 3, 8, 8)) / 8.0

  def loss(v):
    return jax.numpy.sum(jax.nn.gelu(_conv(jax.nn.relu(_conv(v, w)), w)) ** 2)

  grad = jax.grad(loss)
  np.testing.assert_allclose(compile_options.jit(grad)(x), jax.jit(grad)(x),
                             rtol=1e-5, atol=1e-5)
