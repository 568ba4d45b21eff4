"""HWIO kernels for convolutions: same numbers, and no HWOI kernel left in loops."""

import re

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

import flax.linen as nn
from jaxaudit import conv_layout


class _Net(nn.Module):
  """Strided and depthwise convolutions, as in the audited models."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(8, (3, 3), (2, 2))(x))
    x = nn.Conv(8, (3, 3), feature_group_count=8)(x)
    return nn.Conv(4, (3, 3))(x).mean((1, 2))


def _grad_fn():
  net = _Net()
  params = net.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  return params, jax.grad(lambda p, x: net.apply(p, x)[:, 0].sum(), argnums=1)


def test_same_gradient_as_plain_autodiff():
  params, grad = _grad_fn()
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  np.testing.assert_array_equal(
      jax.jit(grad)(params, x),
      jax.jit(conv_layout.canonical_convolutions(grad))(params, x))


def test_kernels_in_a_scan_are_hwio():
  params, grad = _grad_fn()
  x = jnp.zeros((2, 32, 32, 3))

  def kernel_specs(g):
    loop = lambda p, x: lax.scan(lambda c, _: (g(p, c), None), x, None,
                                 length=2)[0]
    text = jax.jit(loop).lower(params, x).as_text()
    return set(re.findall(r"dim_numbers = \[[^\]]*\]x\[([^\]]*)\]", text))

  assert kernel_specs(grad) - {"0, 1, i, o"}  # autodiff's HWOI kernels ...
  assert kernel_specs(conv_layout.canonical_convolutions(grad)) == {"0, 1, i, o"}
