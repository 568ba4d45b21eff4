"""AutoAttack in the attack stage: each sub-attack only on what is still robust,
re-batched, with the same per-example results as the whole-batch composition."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from configs import digits as digits_config
from digits_model import digits
from jaxaudit import pipeline
from jaxaudit.attacks import autoattack
from jaxaudit.sharding import example_keys
from jaxaudit.stages.base import stage_rng

SETTINGS = {"norm": "linf", "attacks": "apgd_ce,apgd_t,fab_t,square",
            "steps": 5, "restarts": 1, "num_target_classes": 3,
            "queries": 50}


def _config(num_examples, batch_size, epsilons):
  """The attack stage of `configs/digits.py` running only AutoAttack on the
  first test digits."""
  config = digits_config.get_config()
  config.stages = "evaluate,attack"
  config.data.num_examples = num_examples
  config.batch_size = batch_size
  config.attack.attacks = "autoattack"
  config.attack.autoattack.epsilons = epsilons
  return config


def test_rebatched_autoattack_equals_the_whole_batch_composition(tmp_path):
  config = _config(24, 8, (8.0, 16.0))
  config.attack.autoattack.update(SETTINGS)
  summary = pipeline.run(config, str(tmp_path))["attack"]
  stats = summary["robust_accuracy_after"]["autoattack"]
  for eps in ("8/255", "16/255"):
    after = list(stats[eps].values())
    assert after == sorted(after, reverse=True)  # Each attack only removes.
    assert after[-1] == summary["robust_accuracy"]["autoattack"][eps]
  assert (summary["robust_accuracy"]["autoattack"]["16/255"]
          < summary["clean_accuracy"])
  records = pd.read_parquet(tmp_path / "records" / "attack")
  # The same attacks on the whole batch at once, with the stage's keys.
  model, params, images, labels, _ = digits(24)
  keys = example_keys(jax.random.fold_in(stage_rng(config.seed, "attack"), 0),
                      jnp.arange(24))
  whole = jax.jit(lambda x, y, k: autoattack.autoattack(
      model.logits_fn(params), x, y, jnp.asarray([8.0, 16.0]) / 255, k,
      **SETTINGS))(images, labels, keys)
  correct = np.asarray(model.logits(params, images)).argmax(-1) == np.asarray(
      labels)
  for e, eps in enumerate(("8/255", "16/255")):
    rows = records[records["epsilon_label"] == eps].sort_values("id")
    np.testing.assert_array_equal(
        rows["success"].to_numpy(), np.asarray(whole.success[e]) & correct)
