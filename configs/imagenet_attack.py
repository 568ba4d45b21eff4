"""EfficientNet-Lite0 on ImageNet images under attack: L-inf epsilons
0.25..4/255, L2 0.1..1, and the plausibility of adversarial labels.

  python -m jaxaudit.main --config=configs/imagenet_attack.py \
      --config.data.dir=../shared/data/imagenet-sample \
      --workdir=/tmp/jaxaudit-in-attack

Sized for a GPU (the full 1000-image sample). `configs/imagenet_attack.py:fast`
attacks 16 images with the stage's small CPU defaults.
"""

from jaxaudit import job_config


def get_config(arg: str = ""):
  variants = set(filter(None, arg.split(",")))
  config = job_config.base_config()
  config.stages = "evaluate,attack"
  config.attack.attacks = ("fgsm,pgd_linf,pgd_l2,deepfool,cw_l2,fmn_linf,fmn_l2,"
                           "autoattack")
  config.batch_size = 32
  config.data.dir = "../shared/data/imagenet-sample"
  attack = config.attack
  if "fast" in variants:
    config.data.num_examples = 16
    return config
  job_config.full_attack_sweep(attack, linf=(0.25, 0.5, 1.0, 2.0, 4.0),
                                pgd_l2=(0.1, 0.25, 0.5, 1.0),
                                minimal_l2=(0.1, 0.25, 0.5, 1.0))
  return config
