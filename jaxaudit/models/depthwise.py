"""Depthwise convolution: shifted, scaled copies of the input on XLA:CPU.

XLA's CPU backend runs grouped convolutions (`feature_group_count` = channels)
slowly, and their input gradient for strides > 1 (an lhs-dilated grouped
convolution) 10-25x slower still. A depthwise kxk filter is k^2 strided slices
times per-channel weights, which XLA fuses into one elementwise loop, forward and
backward: EfficientNet-Lite0's input gradient runs ~10x faster on CPU. Results
match `lax.conv_general_dilated` to float rounding (~1e-6).

Those are XLA:CPU measurements; GPU and TPU have tuned grouped convolutions that
k^2 elementwise passes would not beat. So `depthwise_conv` asks
`cpu_workarounds.needed()`, the one place that decides by backend, each time it
is traced, and off CPU is the plain grouped `lax.conv_general_dilated`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp

from jaxaudit import cpu_workarounds


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """TensorFlow's SAME padding (extra pixel at the end) for one spatial axis."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  """SAME-padded depthwise convolution, in the form that is fast on the backend.

  Args:
    x: [B, H, W, C].
    kernel: [k, k, 1, C] (Flax's HWIO layout for `feature_group_count=C`).
    stride: spatial stride.

  Returns:
    [B, ceil(H / stride), ceil(W / stride), C]: shifted products on XLA:CPU,
    elsewhere `lax.conv_general_dilated` with `feature_group_count=C`.
  """
  if cpu_workarounds.needed():
    return _shifted_products(x, kernel, stride)
  return lax.conv_general_dilated(
      x, kernel, (stride, stride), "SAME",
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=x.shape[-1])


def _shifted_products(x: jax.Array, kernel: jax.Array,
                      stride: int) -> jax.Array:
  """`depthwise_conv` as k^2 strided slices of the SAME-padded [B, H, W, C] `x`
  times the [k, k, 1, C] `kernel`'s per-channel weights."""
  k = kernel.shape[0]
  (top, bottom), (left, right) = (same_padding(x.shape[1], k, stride),
                                  same_padding(x.shape[2], k, stride))
  padded = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
  out_h, out_w = -(-x.shape[1] // stride), -(-x.shape[2] // stride)
  total = jnp.zeros((x.shape[0], out_h, out_w, x.shape[3]), x.dtype)
  for i in range(k):
    for j in range(k):
      window = padded[:, i:i + stride * (out_h - 1) + 1:stride,
                      j:j + stride * (out_w - 1) + 1:stride, :]
      total = total + window * kernel[i, j, 0]
  return total


class DepthwiseConv(nn.Module):
  """Drop-in for `nn.Conv(C, (k, k), stride, padding="SAME",
  feature_group_count=C, use_bias=False)`; same parameter name and shape."""
  kernel_size: int
  stride: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (self.kernel_size, self.kernel_size, 1, x.shape[-1]))
    return depthwise_conv(x, kernel.astype(x.dtype), self.stride)
