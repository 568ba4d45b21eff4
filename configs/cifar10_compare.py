"""CIFAR-10 ResNet-20 and ResNet-56 and their ensemble (mean probability), every
stage per model on the same test images, compared per example: which images
one gets right and the other not, whose adversarials transfer, where their
SIS overlap (report.html; models/<name>/ holds each model's own run).

  python -m jaxaudit.main --config=configs/cifar10_compare.py \
      --workdir=/tmp/jaxaudit-c10-compare

`:fast` runs 32 images with short attacks (tests); `:overinterpretation` runs
evaluate and sis on the first 1,000 test images with Carter et al.'s settings
(single pixels, 1% steps, threshold 0.99): whether the ensemble overinterprets
less than its members (README).
"""

from jaxaudit import job_config

SHARED = job_config.CIFAR10_SHARED


def get_config(arg: str = ""):
  variants = set(filter(None, arg.split(",")))
  config = job_config.cifar10_config(20)
  config.stages = job_config.DIGITS_STAGES
  config.batch_size = 128
  for depth in (20, 56):
    config.models[f"resnet{depth}"] = job_config.model_section(
        name=f"cifar_resnet{depth}", checkpoint=f"{SHARED}/resnet{depth}.th")
  config.ensemble.members = "resnet20,resnet56"
  config.data.num_examples = 1000
  attack = config.attack
  attack.attacks = "fgsm,pgd_linf,pgd_l2,deepfool"
  for name in ("fgsm", "pgd_linf"):
    attack[name].epsilons = (0.5, 1.0, 2.0, 4.0)
  attack.pgd_l2.epsilons = attack.deepfool.epsilons = (0.05, 0.1, 0.25, 0.5)
  attack.pgd_linf.steps = attack.pgd_l2.steps = 10
  config.sis.threshold = 0.99
  config.sis.step_fraction = 0.0
  config.sis.min_step_fraction = 0.01
  if "overinterpretation" in variants:
    config.stages = "evaluate,sis"
  if "fast" in variants:
    config.data.num_examples = 32
    config.batch_size = 32
    attack.attacks = "pgd_linf,deepfool"
    attack.pgd_linf.steps = 5
    attack.deepfool.steps = 20
    config.explain.methods = "saliency,integrated_gradients"
    config.sis.min_step_fraction = 0.05
  return config
