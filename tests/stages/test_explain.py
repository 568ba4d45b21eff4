"""The explain stage end to end on real CIFAR images with the pretrained ResNet-20:
summary, records, maps, the adversarial path and the report section."""

import os

import jax
import numpy as np

from conftest import CIFAR_DIR, require_shared
from jaxaudit import config_defaults, sharding
from jaxaudit.data import dataset as dataset_lib
from jaxaudit.data import sources
from jaxaudit.models import load_model
from jaxaudit.stages import explain
from jaxaudit.stages.base import StageContext, StageOutput


def test_explain_stage_on_cifar(tmp_path):
  require_shared(os.path.join(CIFAR_DIR, "test_jpeg.npz"))
  config = config_defaults.default_config()
  config.model.name = "cifar_resnet20"
  config.model.checkpoint = os.path.join(CIFAR_DIR, "resnet20.th")
  config.data.npz = os.path.join(CIFAR_DIR, "test_jpeg.npz")
  config.data.num_examples = 6
  config.batch_size = 6
  cfg = config.explain
  cfg.batch_size, cfg.ig.steps, cfg.ig.chunk = 6, 32, 16
  cfg.methods = "integrated_gradients,saliency"
  cfg.faithfulness.steps, cfg.neighbours, cfg.gallery_size = 8, 2, 3
  model, params = load_model(config.model)
  data = dataset_lib.build_dataset(
      config.data, sources.build_source(config.data, model.class_names),
      model.preprocessing)
  # The attack stage ran: explain finds its PGD adversarials again.
  ctx = StageContext(config=config, model=model, params=params, data=data,
                     mesh=sharding.make_mesh(), rng=jax.random.key(0),
                     workdir=str(tmp_path),
                     outputs={"attack": StageOutput({}, {})})
  out = explain.run(ctx)
  summary = out.summary
  assert set(summary["deletion_auc"]) == {"integrated_gradients", "saliency",
                                          "random"}
  # 32 Gauss-Legendre steps on a ReLU net: a few percent at most.
  assert summary["ig_completeness_error_median"] < 0.1
  assert (summary["insertion_auc"]["integrated_gradients"]
          > summary["deletion_auc"]["integrated_gradients"])
  assert len(out.records["id"]) == 6
  assert "adversarial_integrated_gradients/completeness_error" in out.records
  # PGD at 1/255 flips most CIFAR predictions; IG then explains the new class.
  flipped = (out.records["adversarial_integrated_gradients/target"]
             != out.records["target"])
  assert flipped.mean() >= 0.5
  neighbours = out.records["neighbours_predicted"]
  assert neighbours.shape == (6, 2)
  assert all(i not in row for i, row in zip(data.ids, neighbours))
  maps = np.load(tmp_path / "records" / "explain" /
                 "_maps-part-00000-of-00001.npz")
  assert maps["map_integrated_gradients"].shape == (6, 32, 32)
  assert maps["deletion_saliency"].shape == (6, 9)
  assert maps["map_adversarial_integrated_gradients"].shape == (6, 32, 32)
  titles = [getattr(item, "title", "") for item in out.sections[0].items]
  assert "Clean and adversarial images, side by side" in titles
  assert "Nearest neighbours" in titles
