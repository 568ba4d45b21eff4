"""XLA options that jaxaudit compiles its model-running functions with.

XLA:CPU (jaxlib 0.10) hands 2-D convolutions with 32 or more channels to
YNNPACK by default, and those calls run on a single core: on a 2-core machine
the ResNet-20 stages at 16x16x32 and 8x8x64 take twice as long as XLA's own
(Eigen) convolutions, which use every core, and the gap grows with the core
count. Measured on the 2-core CI machine kind: ResNet-20 forward 963 -> 1164
img/s, EfficientNet-Lite0 forward 46 -> 79 img/s, integrated gradients 7.2 ->
10.5 img/s. `compiler_options()` keeps XLA's other YNNPACK offloads (dots and
reductions, the rest of its default list) and leaves convolutions to XLA.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

_YNN_FUSION_TYPE = "xla_cpu_experimental_ynn_fusion_type"
_WITHOUT_CONVOLUTION = ("LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,"
                        "LIBRARY_FUSION_TYPE_REDUCE")


@functools.cache
def compiler_options() -> dict[str, str]:
  """`jax.jit(..., compiler_options=...)` for functions that run the model.

  Empty on other backends and on XLA versions without the YNNPACK option (then
  there is nothing to undo).
  """
  if jax.default_backend() != "cpu":
    return {}
  options = {_YNN_FUSION_TYPE: _WITHOUT_CONVOLUTION}
  try:
    jax.jit(jnp.negative, compiler_options=options).lower(
        jnp.zeros(())).compile()
  except jax.errors.JaxRuntimeError:
    return {}
  return options


def jit(fn: Callable[..., Any], **kwargs: Any) -> jax.stages.Wrapped:
  """`jax.jit(fn, **kwargs)` compiled with `compiler_options()`."""
  return jax.jit(fn, compiler_options=compiler_options(), **kwargs)
