"""Integrated gradients: completeness, chunking invariance, adaptive nodes."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit.explain import integrated_gradients as ig
from tiny_model import images, make_logits_fn


def test_linear_model_is_exact_for_any_rule_and_steps():
  w = jax.random.normal(jax.random.key(0), (8 * 8 * 3, 5))
  logits_fn = lambda x: x.reshape(x.shape[0], -1) @ w
  x = images()
  out = ig.integrated_gradients(logits_fn, x, jnp.zeros_like(x),
                                jnp.array([0, 1, 2, 3]), steps=2, chunk=1,
                                rule="riemann_left")
  expected = x * w[:, jnp.array([0, 1, 2, 3])].T.reshape(x.shape)
  np.testing.assert_allclose(out.attributions, expected, rtol=1e-5, atol=1e-6)
  assert float(out.completeness_error.max()) < 1e-5


def test_chunk_size_does_not_change_the_result():
  logits_fn, x = make_logits_fn(), images()
  targets = jnp.argmax(logits_fn(x), -1)
  runs = [ig.integrated_gradients(logits_fn, x, jnp.zeros_like(x), targets,
                                  steps=12, chunk=c).attributions
          for c in (1, 5, 12)]
  np.testing.assert_allclose(runs[0], runs[1], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(runs[0], runs[2], rtol=1e-5, atol=1e-6)


def test_completeness_error_shrinks_with_steps_on_a_relu_net():
  logits_fn, x = make_logits_fn(), images(batch=8)
  targets = jnp.argmax(logits_fn(x), -1)
  errors = [float(jnp.median(ig.integrated_gradients(
      logits_fn, x, jnp.zeros_like(x), targets, steps=s, chunk=16,
      rule="gausslegendre").completeness_error)) for s in (4, 256)]
  assert errors[1] < 0.01
  assert errors[1] < errors[0]


def test_adaptive_nodes_pack_cells_where_the_logit_jumps():
  # A logit that jumps at alpha = 0.03 (as a black image starts to show).
  values = jax.nn.sigmoid((jnp.linspace(0, 1, 65) - 0.03) * 400)[None]
  nodes, weights = ig.adaptive_nodes(values, 16)
  assert np.isclose(float(weights.sum()), 1.0, atol=1e-6)
  assert int((jnp.abs(nodes - 0.03) < 1 / 64).sum()) >= 8
  assert bool(jnp.all(jnp.diff(nodes[0]) > 0))


def test_probes_improve_completeness_where_the_logit_jumps():
  # The logit rises only while alpha * mean(x) is in [0.02, 0.07]: a narrow
  # box-shaped integrand that 16 even nodes resolve badly.
  def logits_fn(x):
    level = x.mean((1, 2, 3))
    return jnp.stack([40 * jnp.clip(level - 0.02, 0, 0.05), level], -1)

  x = images() * 0.2 + 0.9
  targets = jnp.zeros(4, jnp.int32)
  errors = [float(jnp.median(ig.integrated_gradients(
      logits_fn, x, jnp.zeros_like(x), targets, steps=16, chunk=8,
      rule="riemann_middle", probes=p).completeness_error)) for p in (0, 64)]
  assert errors[0] > 0.05
  assert errors[1] < errors[0] / 3
