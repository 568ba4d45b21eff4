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

It also compiles with LLVM's optimisation level 1 instead of XLA's default 2:
on the 2-core machine three input-gradient steps of EfficientNet-Lite0 on 8
images run in 0.91-1.07 s instead of 1.53-1.57 s, and of ResNet-20 in 0.20 s
instead of 0.28 s (forward passes alike), and compile in 3.6 s instead of
4.3 s; the demo job (`configs/default.py`) takes 173 s instead of 216 s.

These are XLA:CPU measurements and XLA:CPU options, so `compiler_options()`
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
_LLVM_LEVEL = "xla_backend_optimization_level"


def compiler_options() -> dict[str, str | int]:
  """`jax.jit(..., compiler_options=...)` for functions that run the model.

  Returns:
    Where `cpu_workarounds.needed()`: XLA:CPU's default YNNPACK offloads
    without convolutions, and LLVM optimisation level 1, each where this XLA
    accepts it; otherwise empty (nothing to undo).
  """
  if not cpu_workarounds.needed():
    return {}
  return _cpu_options()


@functools.cache
def _cpu_options() -> dict[str, str | int]:
  """The CPU options this XLA:CPU accepts; a fact of the installed jaxlib, so
  the probe compiles (on a CPU device) run once."""
  accepted = {}
  for name, value in ((_YNN_FUSION_TYPE, _WITHOUT_CONVOLUTION),
                      (_LLVM_LEVEL, 1)):
    try:
      jax.jit(jnp.negative, compiler_options={name: value}).lower(
          jnp.zeros((), device=jax.devices("cpu")[0])).compile()
    except jax.errors.JaxRuntimeError:
      continue
    accepted[name] = value
  return accepted


def jit(fn: Callable[..., Any], **kwargs: Any) -> jax.stages.Wrapped:
  """`jax.jit(fn, **kwargs)` compiled with `compiler_options()`."""
  return jax.jit(fn, compiler_options=compiler_options(), **kwargs)
