"""The explain stage end to end on real digits with the shipped digits model:
summary, records, maps, the adversarials it reads from the attack stage (each
computed once) and the report section."""

import json

import jax
import numpy as np
import pandas as pd

from configs import digits as digits_config
from jaxaudit import pipeline
from jaxaudit.attacks import pgd


def test_explain_reads_the_attack_stages_adversarials(tmp_path, monkeypatch):
  config = digits_config.get_config()
  config.stages = "evaluate,attack,explain"
  config.data.num_examples = 6
  config.batch_size = 6
  config.attack.attacks = "pgd_linf"
  config.attack.pgd_linf.epsilons = (32.0,)
  cfg = config.explain
  cfg.batch_size, cfg.ig.steps, cfg.ig.chunk = 6, 32, 16
  cfg.methods = "integrated_gradients,saliency"
  cfg.faithfulness.steps, cfg.neighbours, cfg.gallery_size = 8, 2, 3
  attacked = []
  original = pgd.pgd_linf

  def counted(logits_fn, images, *args, **kwargs):
    jax.debug.callback(lambda n: attacked.append(int(n)), images.shape[0])
    return original(logits_fn, images, *args, **kwargs)

  monkeypatch.setattr(pgd, "pgd_linf", counted)
  summary = pipeline.run(config, str(tmp_path))["explain"]
  # One batch of 6: every adversarial is computed once, by the attack stage
  # (neither its gallery nor explain runs the attack again).
  assert attacked == [6]
  assert set(summary["deletion_auc"]) == {"integrated_gradients", "saliency",
                                          "random"}
  # 32 Gauss-Legendre steps on a ReLU net: a few percent at most.
  assert summary["ig_completeness_error_median"] < 0.1
  assert (summary["insertion_auc"]["integrated_gradients"]
          > summary["deletion_auc"]["integrated_gradients"])
  records = pd.read_parquet(tmp_path / "records" / "explain")
  assert len(records) == 6
  # PGD at 32/255 flips every digit here; IG then explains the new class.
  flipped = (records["adversarial_integrated_gradients/target"]
             != records["target"])
  assert flipped.mean() >= 0.5
  neighbours = np.stack(records["neighbours_predicted"])
  assert neighbours.shape == (6, 2)
  assert all(i not in row for i, row in zip(records["id"], neighbours))
  index = json.loads((tmp_path / "artifacts-p00000.json").read_text())
  for name in ("explain.map.integrated_gradients",
               "explain.adversarial_map.integrated_gradients",
               "attack.adversarial.pgd_linf"):
    (first, last, path), = index[name]
    assert (first, last) == (0, 6)
    assert np.load(tmp_path / path).shape[0] == 6
  page = (tmp_path / "report.html").read_text()
  assert "Clean and adversarial images, side by side" in page
  assert "Nearest neighbours" in page
