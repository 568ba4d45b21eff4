"""Per-example proper scores and the label's likelihood under temperatures.

Negative log-likelihood -log p(label) and the Brier score sum_k (p_k - y_k)^2
(summed over the K classes, in [0, 2]) are computed per example from the
logits, as is, for every temperature T of a fixed grid, log softmax(logits /
T)[label] and the top-1 probability at T. Summed over the examples, the grid
gives the NLL curve whose minimum is the optimal temperature (Guo et al.,
2017), found to the grid's 5% resolution without another pass over the data,
and the confidences there give the ECE after temperature scaling. Nothing is
applied to the model's outputs: these are reported numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# 121 temperatures from 0.05 to 20, each 5.1% above the last (and 1.0 on it).
TEMPERATURES = np.geomspace(0.05, 20.0, 121).astype(np.float32)


def per_example(logits: jax.Array, labels: jax.Array,
                temperatures: jax.Array) -> dict[str, jax.Array]:
  """Scores of a batch.

  Args:
    logits: float [B, K].
    labels: int [B] (-1 = unlabelled: its label terms are 0).
    temperatures: float [G].

  Returns:
    {"confidence": [B] top-1 probability, "nll": [B], "brier": [B],
     "label_logprob": [B, G] log p_T(label), "confidence_t": [B, G] top-1
     probability at each temperature}.
  """
  logits = logits.astype(jnp.float32)
  labelled = labels >= 0
  label = jnp.maximum(labels, 0)
  logp = jax.nn.log_softmax(logits, axis=-1)
  probs = jnp.exp(logp)
  p_label = jnp.take_along_axis(probs, label[:, None], -1)[:, 0]
  logp_label = jnp.take_along_axis(logp, label[:, None], -1)[:, 0]
  scaled = jax.nn.log_softmax(
      logits[:, None, :] / temperatures[None, :, None], axis=-1)
  label_t = jnp.take_along_axis(scaled, label[:, None, None], -1)[..., 0]
  zero = jnp.zeros_like(p_label)
  return {
      "confidence": probs.max(-1),
      "nll": jnp.where(labelled, -logp_label, zero),
      "brier": jnp.where(labelled,
                         jnp.sum(probs * probs, -1) - 2 * p_label + 1, zero),
      "label_logprob": jnp.where(labelled[:, None], label_t, 0.0),
      "confidence_t": jnp.exp(scaled.max(-1)),
  }


def best_temperature(label_logprob: np.ndarray) -> tuple[int, float]:
  """The grid temperature with the lowest mean NLL.

  Args:
    label_logprob: float [N, G] log p_T(label) of labelled examples, at the
      temperatures of the grid.

  Returns:
    (its index in the grid, its mean NLL); (-1, NaN) for no examples.
  """
  if not len(label_logprob):
    return -1, float("nan")
  nll = -np.asarray(label_logprob, np.float64).mean(axis=0)
  best = int(np.argmin(nll))
  return best, float(nll[best])
