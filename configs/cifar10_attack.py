"""CIFAR-10 ResNet-20 under attack: L-inf epsilons 0.25..8/255, L2 0.05..1.

  python -m jaxaudit.main --config=configs/cifar10_attack.py \
      --config.data.npz=../shared/data/cifar10/test_jpeg.npz \
      --workdir=/tmp/jaxaudit-c10-attack

`configs/cifar10_attack.py:fast` attacks 64 images with fewer steps (tests);
`:resnet56` attacks the ResNet-56.
"""

from jaxaudit import job_config


def get_config(arg: str = ""):
  variants = set(filter(None, arg.split(",")))
  config = job_config.cifar10_config(56 if "resnet56" in variants else 20)
  config.stages = "evaluate,attack"
  config.attack.attacks = ("fgsm,pgd_linf,pgd_l2,deepfool,cw_l2,fmn_linf,fmn_l2,"
                           "autoattack")
  config.data.num_examples = 1000
  attack = config.attack
  attack.batch_size = 100
  job_config.full_attack_sweep(attack, linf=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
                                pgd_l2=(0.05, 0.1, 0.25, 0.5, 1.0),
                                minimal_l2=(0.05, 0.1, 0.25, 0.5))
  attack.cw_l2.stepsize = 0.01  # Foolbox's, right for 32 x 32 images.
  if "fast" in variants:
    config.data.num_examples = 64
    attack.batch_size = 32
    attack.pgd_linf.steps = attack.pgd_l2.steps = 5
    attack.pgd_linf.rel_stepsize = attack.pgd_l2.rel_stepsize = 0.5
    attack.deepfool.steps = 20
    attack.cw_l2.binary_search_steps, attack.cw_l2.steps = 3, 20
    attack.fmn_linf.steps = attack.fmn_l2.steps = 20
    attack.autoattack.steps, attack.autoattack.queries = 10, 200
  return config
