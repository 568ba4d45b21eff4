"""NHWC / HWIO convolutions: same numbers, and no other layout left in loops."""

import re

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np
import pytest

import flax.linen as nn
from jaxaudit import conv_layout


@pytest.fixture(autouse=True)
def _on_cpu(monkeypatch):
  """The rewrite is XLA:CPU's (off CPU `canonical_convolutions` is the identity,
  tests/test_backend_dispatch.py); its StableHLO is the same on any machine."""
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")


class _Net(nn.Module):
  """Strided and depthwise convolutions, as in the audited models."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(8, (3, 3), (2, 2))(x))
    x = nn.Conv(8, (3, 3), feature_group_count=8)(x)
    return nn.Conv(4, (3, 3))(x).mean((1, 2))


def _grad_fn(argnums=1):
  """Input gradients (argnums=1) or parameter gradients (argnums=0)."""
  net = _Net()
  params = net.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  return params, jax.grad(lambda p, x: net.apply(p, x)[:, 0].sum(),
                          argnums=argnums)


def test_same_gradient_as_plain_autodiff():
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  params, grad = _grad_fn()
  np.testing.assert_array_equal(
      jax.jit(grad)(params, x),
      jax.jit(conv_layout.canonical_convolutions(grad))(params, x))
  params, grad = _grad_fn(argnums=0)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5,
                                                       atol=1e-6),
               jax.jit(grad)(params, x),
               jax.jit(conv_layout.canonical_convolutions(grad))(params, x))


def _layouts(text):
  """(input, kernel, output) layouts of every convolution in StableHLO text."""
  return set(re.findall(
      r"dim_numbers = \[([^\]]*)\]x\[([^\]]*)\]->\[([^\]]*)\]", text))


def test_convolutions_in_a_scan_are_nhwc_hwio():
  x = jnp.zeros((2, 32, 32, 3))
  canonical = {("b, 0, 1, f", "0, 1, i, o", "b, 0, 1, f")}
  params, grad = _grad_fn()

  def input_grad_loop(g):
    return lambda p, x: lax.scan(lambda c, _: (g(p, c), None), x, None,
                                 length=2)[0]

  def layouts(loop):
    return _layouts(jax.jit(loop).lower(params, x).as_text())

  assert layouts(input_grad_loop(grad)) - canonical  # autodiff's HWOI ...
  assert layouts(input_grad_loop(
      conv_layout.canonical_convolutions(grad))) == canonical
  params, grad = _grad_fn(argnums=0)

  def train_loop(g):  # Kernel gradients: batch and feature swapped.
    return lambda p, x: lax.scan(
        lambda c, _: (jax.tree.map(lambda a, b: a - b, c, g(c, x)), None), p,
        None, length=2)[0]

  assert layouts(train_loop(grad)) - canonical
  assert layouts(train_loop(
      conv_layout.canonical_convolutions(grad))) == canonical
