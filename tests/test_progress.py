"""Progress from inside compiled loops: a few log lines over a long loop,
none for a short one, once per step whatever the vmapped axes, and results
untouched."""

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit import progress


def _loop(steps: int, report: bool):
  def body(i, x):
    if report:
      progress.tick("test loop", i, steps)
    return jnp.sin(x) + 0.01

  return jax.jit(jax.vmap(lambda x: jax.lax.fori_loop(0, steps, body, x)))


def _messages(monkeypatch, fn, x):
  lines = []
  monkeypatch.setattr(logging, "info", lambda fmt, *args: lines.append(
      fmt % args))
  out = np.asarray(fn(x))
  jax.effects_barrier()
  return out, lines


def test_long_loops_report_a_few_times_and_change_nothing(monkeypatch):
  x = jnp.linspace(0.0, 1.0, 12).reshape(3, 4)
  out, lines = _messages(monkeypatch, _loop(100, True), x)
  assert lines == [f"test loop: step {k}/100" for k in (25, 50, 75, 100)]
  np.testing.assert_array_equal(out, np.asarray(_loop(100, False)(x)))


def test_short_loops_say_nothing(monkeypatch):
  _, lines = _messages(monkeypatch, _loop(progress.MIN_STEPS - 1, True),
                       jnp.ones((2, 3)))
  assert not lines
