"""Puts every convolution kernel of a traced function in the HWIO layout.

XLA:CPU only rewrites convolutions into its fast (Eigen) form in the entry
computation, not inside loop bodies (jax-ml/jax#12868). The input gradient of a
convolution, which BGSIS, integrated gradients and SmoothGrad need at every step
of a `lax.scan`, has its kernel in the HWOI layout, and the kernel gradient,
which training needs, has its input and output with batch and feature swapped;
inside the loop both fall back to a naive kernel ten to a hundred times slower.
`canonical_convolutions(fn)` re-traces `fn` and gives each convolution explicitly
transposed NHWC inputs and outputs and an HWIO kernel: same numbers, and on
XLA:CPU fast inside loops too.

The slow path and the measurements are XLA:CPU's; GPU and TPU compilers pick
their own convolution layouts, where the re-trace would only add transposes. So
`canonical_convolutions` asks `cpu_workarounds.needed()`, the one place that
decides by backend, each time it wraps a function, and off CPU returns the
function itself.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.extend.core as jex
from jax import lax
import jax.numpy as jnp

from jaxaudit import cpu_workarounds

_INLINE = ("jit", "pjit", "closed_call", "custom_jvp_call", "custom_vjp_call")


def _conv(lhs: jax.Array, rhs: jax.Array, **params: Any) -> jax.Array:
  """conv_general_dilated on (batch, spatial..., feature) inputs and outputs
  and a (spatial..., in, out) kernel, transposing whatever is not."""
  numbers = params["dimension_numbers"]
  n = lhs.ndim
  spatial = tuple(range(1, n - 1))
  data = (0, n - 1) + spatial  # (batch, feature, spatial...) positions.
  kernel = (n - 1, n - 2) + tuple(range(n - 2))  # (out, in, spatial...).
  lhs_spec, rhs_spec, out_spec = (tuple(s) for s in numbers)
  if lhs_spec != data:
    lhs = jnp.transpose(lhs, (lhs_spec[0],) + lhs_spec[2:] + (lhs_spec[1],))
  if rhs_spec != kernel:
    rhs = jnp.transpose(rhs, rhs_spec[2:] + (rhs_spec[1], rhs_spec[0]))
  out = lax.conv_general_dilated_p.bind(
      lhs, rhs, **dict(params, dimension_numbers=lax.ConvDimensionNumbers(
          data, kernel, data)))
  if out_spec == data:
    return out
  order = [0] * n  # Output axis out_spec[k] comes from axis data[k].
  for position, axis in zip(out_spec, data):
    order[position] = axis
  return jnp.transpose(out, order)


def _sub_jaxpr(eqn: jex.JaxprEqn) -> jex.ClosedJaxpr | None:
  if eqn.primitive.name not in _INLINE:
    return None
  for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
    sub = eqn.params.get(key)
    if isinstance(sub, jex.ClosedJaxpr):
      return sub
    if isinstance(sub, jex.Jaxpr):
      return jex.ClosedJaxpr(sub, ())
  return None


def _evaluate(jaxpr: jex.Jaxpr, consts: list, args: list) -> list:
  env: dict = {}

  def read(v):
    return v.val if isinstance(v, jex.Literal) else env[v]

  env.update(zip(jaxpr.constvars, consts))
  env.update(zip(jaxpr.invars, args))
  for eqn in jaxpr.eqns:
    invals = [read(v) for v in eqn.invars]
    sub = _sub_jaxpr(eqn)
    if eqn.primitive is lax.conv_general_dilated_p:
      outs = [_conv(*invals, **eqn.params)]
    elif sub is not None:
      outs = _evaluate(sub.jaxpr, sub.consts, invals)
    else:
      params = eqn.primitive.get_bind_params(eqn.params)
      outs = eqn.primitive.bind(*invals, **params)
      if not eqn.primitive.multiple_results:
        outs = [outs]
    env.update(zip(eqn.outvars, outs))
  return [read(v) for v in jaxpr.outvars]


def canonical_convolutions(fn: Callable[..., Any]) -> Callable[..., Any]:
  """`fn` with the same outputs, its convolutions given HWIO kernels on CPU.

  Args:
    fn: a function of arrays (pytrees allowed) to trace; apply it to a
      function that already contains its gradients (e.g. `jax.grad(f)`).

  Returns:
    A function with `fn`'s signature and outputs: on XLA:CPU one that re-traces
    `fn` with NHWC / HWIO convolutions, elsewhere `fn` itself.
  """
  if not cpu_workarounds.needed():
    return fn

  def wrapped(*args):
    closed, shapes = jax.make_jaxpr(fn, return_shape=True)(*args)
    outs = _evaluate(closed.jaxpr, closed.consts, jax.tree.leaves(args))
    return jax.tree.unflatten(jax.tree.structure(shapes), outs)

  return wrapped
