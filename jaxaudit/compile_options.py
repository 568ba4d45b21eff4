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

These are XLA:CPU measurements and an XLA:CPU option, so `compiler_options()`
asks `cpu_workarounds.needed()`, the one place that decides by backend, on every
call; on GPU and TPU it gives no options.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxaudit import cpu_workarounds

_YNN_FUSION_TYPE = "xla_cpu_experimental_ynn_fusion_type"
_WITHOUT_CONVOLUTION = ("LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,"
                        "LIBRARY_FUSION_TYPE_REDUCE")


def compiler_options() -> dict[str, str]:
  """`jax.jit(..., compiler_options=...)` for functions that run the model.

  Returns:
    XLA:CPU's default YNNPACK offloads without convolutions where
    `cpu_workarounds.needed()` and this XLA has the option; otherwise empty
    (nothing to undo).
  """
  if not cpu_workarounds.needed():
    return {}
  return _ynnpack_without_convolutions()


@functools.cache
def _ynnpack_without_convolutions() -> dict[str, str]:
  """The CPU options, or {} if this XLA:CPU rejects them; a fact of the
  installed jaxlib, so the probe compile (on a CPU device) runs once."""
  options = {_YNN_FUSION_TYPE: _WITHOUT_CONVOLUTION}
  try:
    jax.jit(jnp.negative, compiler_options=options).lower(
        jnp.zeros((), device=jax.devices("cpu")[0])).compile()
  except jax.errors.JaxRuntimeError:
    return {}
  return options


def jit(fn: Callable[..., Any], **kwargs: Any) -> jax.stages.Wrapped:
  """`jax.jit(fn, **kwargs)` compiled with `compiler_options()`."""
  return jax.jit(fn, compiler_options=compiler_options(), **kwargs)
