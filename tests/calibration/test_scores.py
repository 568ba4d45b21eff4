"""Per-example NLL, Brier and tempered likelihoods against NumPy, and the
optimal temperature recovered from labels drawn at a known temperature."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxaudit.calibration import scores


def _softmax(z):
  z = z - z.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def test_scores_match_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(16, 7)).astype(np.float32) * 3
  labels = rng.integers(-1, 7, 16)
  grid = np.array([0.5, 1.0, 2.0], np.float32)
  out = {k: np.asarray(v) for k, v in scores.per_example(
      jnp.asarray(logits), jnp.asarray(labels, jnp.int32),
      jnp.asarray(grid)).items()}
  probs = _softmax(logits.astype(np.float64))
  labelled = labels >= 0
  rows = np.flatnonzero(labelled)
  onehot = np.eye(7)[labels[rows]]
  np.testing.assert_allclose(out["confidence"], probs.max(-1), rtol=1e-5)
  np.testing.assert_allclose(out["nll"][rows],
                             -np.log(probs[rows, labels[rows]]), rtol=1e-4)
  np.testing.assert_allclose(out["brier"][rows],
                             ((probs[rows] - onehot) ** 2).sum(-1), atol=1e-5)
  assert not out["nll"][~labelled].any() and not out["brier"][~labelled].any()
  for g, t in enumerate(grid):
    tempered = _softmax(logits.astype(np.float64) / t)
    np.testing.assert_allclose(out["label_logprob"][rows, g],
                               np.log(tempered[rows, labels[rows]]),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["confidence_t"][:, g], tempered.max(-1),
                               rtol=1e-5)


def test_the_optimal_temperature_is_the_one_labels_were_drawn_at():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(20_000, 10)).astype(np.float32) * 4
  drawn_at = 2.5
  probs = _softmax(logits.astype(np.float64) / drawn_at)
  labels = (probs.cumsum(-1) > rng.random((len(probs), 1))).argmax(-1)
  out = scores.per_example(jnp.asarray(logits), jnp.asarray(labels, jnp.int32),
                           jnp.asarray(scores.TEMPERATURES))
  best, nll = scores.best_temperature(np.asarray(out["label_logprob"]))
  assert scores.TEMPERATURES[best] == pytest.approx(drawn_at, rel=0.11)
  assert nll < float(np.asarray(out["nll"]).mean())


def test_the_grid():
  assert np.isclose(scores.TEMPERATURES, 1.0).any()
  ratios = scores.TEMPERATURES[1:] / scores.TEMPERATURES[:-1]
  assert np.allclose(ratios, ratios[0], rtol=1e-4) and ratios[0] < 1.052
  best, nll = scores.best_temperature(np.zeros((0, 3)))
  assert best == -1 and np.isnan(nll)
