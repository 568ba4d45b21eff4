"""The XLA:CPU workarounds apply on CPU only, as `cpu_workarounds` decides.

The backend query is patched, so both branches run on any machine: what each
branch traces does not depend on where it then runs.
"""

import jax
import jax.extend.core as jex
import jax.numpy as jnp
from jax import lax
import numpy as np
import pytest

from jaxaudit import compile_options, conv_layout, cpu_workarounds
from jaxaudit.models.depthwise import DepthwiseConv

OTHER_BACKENDS = ("gpu", "tpu")


@pytest.fixture(params=("cpu",) + OTHER_BACKENDS)
def backend(request, monkeypatch):
  """Each backend name in turn, as `jax.default_backend()` reports it."""
  monkeypatch.setattr(jax, "default_backend", lambda: request.param)
  return request.param


def test_needed_follows_the_backend_on_every_call(monkeypatch):
  for name, needed in (("gpu", False), ("cpu", True), ("tpu", False)):
    monkeypatch.setattr(jax, "default_backend", lambda name=name: name)
    assert cpu_workarounds.needed() is needed, name


def test_conv_layout_wraps_on_cpu_only(backend):
  def grad(x, w):
    return jax.grad(lambda v: lax.conv_general_dilated(
        v, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    ).sum())(x)

  wrapped = conv_layout.canonical_convolutions(grad)
  assert (wrapped is grad) == (backend != "cpu")
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 8, 8, 3)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)
  np.testing.assert_array_equal(jax.jit(wrapped)(x, w), jax.jit(grad)(x, w))


@pytest.mark.parametrize("name", OTHER_BACKENDS)
def test_no_cpu_compiler_options_off_cpu(monkeypatch, name):
  monkeypatch.setattr(jax, "default_backend", lambda: name)
  assert compile_options.compiler_options() == {}


def _feature_groups(jaxpr: jex.Jaxpr) -> list[int]:
  """feature_group_count of every convolution in `jaxpr` and its sub-jaxprs."""
  groups = []
  for eqn in jaxpr.eqns:
    if eqn.primitive is lax.conv_general_dilated_p:
      groups.append(eqn.params["feature_group_count"])
    for param in eqn.params.values():
      if isinstance(param, jex.ClosedJaxpr):
        groups += _feature_groups(param.jaxpr)
      elif isinstance(param, jex.Jaxpr):
        groups += _feature_groups(param)
  return groups


@pytest.mark.parametrize("kernel_size,stride,size", ((3, 1, 9), (3, 2, 9),
                                                     (5, 2, 10)))
def test_depthwise_is_a_grouped_convolution_off_cpu(backend, kernel_size,
                                                    stride, size):
  channels = 6
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, size, size, channels)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(kernel_size, kernel_size, 1, channels)),
                       jnp.float32)
  module = DepthwiseConv(kernel_size, stride)
  params = {"params": {"kernel": kernel}}

  def grouped(x):
    return lax.conv_general_dilated(
        x, kernel, (stride, stride), "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=channels)

  def ours(x):
    return module.apply(params, x)

  def input_gradient(fn):
    return jax.jit(lambda x, t: jax.vjp(fn, x)[1](t)[0])

  expected = jax.jit(grouped)(x)
  np.testing.assert_allclose(jax.jit(ours)(x), expected, rtol=1e-5, atol=1e-5)
  cotangent = jnp.asarray(rng.normal(size=expected.shape), jnp.float32)
  np.testing.assert_allclose(input_gradient(ours)(x, cotangent),
                             input_gradient(grouped)(x, cotangent), rtol=1e-5,
                             atol=1e-5)
  groups = _feature_groups(jax.make_jaxpr(ours)(x).jaxpr)
  if backend == "cpu":
    assert not groups
  else:
    assert groups == [channels]
