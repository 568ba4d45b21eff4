"""XLA options that jaxaudit compiles its model-running functions with.

XLA:CPU (jaxlib 0.10) hands 2-D convolutions with 32 or more channels to
YNNPACK by default, and those calls run on a single core, while XLA's own
(Eigen) convolutions use every core. On one core integrated gradients on
ResNet-20 run at the same speed either way (5.4 vs 5.5 img/s); on the 2-core CI
machine kind, XLA's convolutions take ResNet-20 forward from 963 to 1164 img/s,
EfficientNet-Lite0 forward from 46 to 79 img/s and integrated gradients from
7.2 to 10.5 img/s. `compiler_options()` keeps XLA's other YNNPACK offloads
(dots and reductions, the rest of its default list) and leaves convolutions to
XLA. XLA's convolutions round differently for different batch sizes, so the same
examples on 1 and on 8 devices agree to float32 rounding (about 1e-7 relative),
not bit for bit as with YNNPACK.
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
