"""Whether jaxaudit's XLA:CPU workarounds apply: the one place that decides.

Three parts of jaxaudit work around slow paths of XLA's CPU backend, and every
speed-up they claim was measured on XLA:CPU:

- `compile_options` keeps 2-D convolutions out of YNNPACK, which runs them on
  one core;
- `conv_layout` gives convolutions inside loops NHWC inputs and HWIO kernels,
  because XLA:CPU rewrites only the entry computation's convolutions into their
  fast form;
- `models.depthwise` computes depthwise convolutions as shifted products,
  because XLA:CPU's grouped convolutions and their gradients are slow.

On GPU and TPU none of these slow paths exists, and the rewrites would only
replace XLA's tuned convolutions with extra transposes or k^2 elementwise
passes, so there each of them gives way to the plain `lax` convolution. Each
asks `needed()` when it builds or traces a computation (never at import time)
and keeps no state of its own, so the answer always follows
`jax.default_backend()`: the platform that `jax.jit` compiles for, and whose
devices (`jax.devices()`) jaxaudit's meshes are made of.
"""

from __future__ import annotations

import jax


def needed() -> bool:
  """True where computations run on XLA:CPU, which the workarounds are for.

  Returns:
    Whether `jax.default_backend()` is "cpu", read anew on every call.
  """
  return jax.default_backend() == "cpu"
