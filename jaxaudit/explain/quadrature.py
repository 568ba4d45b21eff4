"""Quadrature rules for the path integral of integrated gradients.

Node placement matches Captum's `approximation_methods`, so an attribution computed
here and one computed with Captum on the same weights, with the same rule and number
of steps, evaluate the gradient at the same points. Weights match too except for
the trapezoid rule: Captum gives each of its n nodes (spaced 1/(n - 1)) a width of
1/n, so its weights sum to 1 - 1/n; here they are 1/(n - 1) (halved at the ends)
and sum to 1.
"""

from __future__ import annotations

import numpy as np

from jaxaudit.errors import ParameterError

RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
         "gausslegendre")


def nodes_and_weights(rule: str, steps: int,
                      parameter: str = "ig.method"
                      ) -> tuple[np.ndarray, np.ndarray]:
  """Points in [0, 1] and weights summing to 1 that approximate an integral.

  Args:
    rule: one of `RULES`.
    steps: number of gradient evaluations (> 1 for Riemann rules).
    parameter: the parameter named in errors.

  Returns:
    alphas float64 [steps] and weights float64 [steps]; the integral of g over
    [0, 1] is approximated by `sum(weights * g(alphas))`.
  """
  if rule not in RULES:
    raise ParameterError(parameter, f"unknown quadrature '{rule}'; valid: "
                         + ", ".join(RULES))
  minimum = 1 if rule == "gausslegendre" else 2
  if steps < minimum:
    raise ParameterError(parameter, f"'{rule}' needs at least {minimum} "
                         f"steps, got {steps}")
  if rule == "gausslegendre":
    points, weights = np.polynomial.legendre.leggauss(steps)
    return 0.5 * (points + 1.0), 0.5 * weights
  if rule == "riemann_trapezoid":
    weights = np.full(steps, 1.0 / (steps - 1))
    weights[[0, -1]] /= 2
    return np.linspace(0.0, 1.0, steps), weights
  weights = np.full(steps, 1.0 / steps)
  start = {"riemann_left": 0.0, "riemann_right": 1.0 / steps,
           "riemann_middle": 0.5 / steps}[rule]
  return start + np.arange(steps) / steps, weights
