"""CIFAR-10 ResNet-20 under attack: L-inf epsilons 0.25..8/255, L2 0.05..1.

  python -m jaxaudit.main --config=configs/cifar10_attack.py \
      --config.data.npz=../shared/data/cifar10/test_jpeg.npz \
      --workdir=/tmp/jaxaudit-c10-attack

`configs/cifar10_attack.py:fast` attacks 64 images with fewer steps (tests);
`:resnet56` attacks the ResNet-56.
"""

from jaxaudit import config_defaults


def get_config(arg: str = ""):
  variants = set(filter(None, arg.split(",")))
  config = config_defaults.default_config()
  depth = 56 if "resnet56" in variants else 20
  config.stages = "evaluate,attack"
  config.attack.attacks = "fgsm,pgd_linf,pgd_l2,deepfool,cw_l2"
  config.batch_size = 250
  config.model.name = f"cifar_resnet{depth}"
  config.model.checkpoint = f"../shared/data/cifar10/resnet{depth}.th"
  config.data.npz = "../shared/data/cifar10/test_jpeg.npz"
  config.data.num_examples = 1000
  attack = config.attack
  attack.batch_size = 100
  linf = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # In 1/255.
  attack.fgsm.epsilons = linf
  attack.pgd_linf.epsilons = linf
  attack.pgd_l2.epsilons = (0.05, 0.1, 0.25, 0.5, 1.0)
  for name in ("pgd_linf", "pgd_l2"):
    attack[name].steps = 10
    attack[name].rel_stepsize = 0.25
    attack[name].random_start = True
  attack.deepfool.epsilons = (0.05, 0.1, 0.25, 0.5)
  attack.deepfool.steps = 50
  attack.deepfool.candidates = 10
  attack.cw_l2.epsilons = (0.05, 0.1, 0.25, 0.5)
  attack.cw_l2.binary_search_steps = 5
  attack.cw_l2.steps = 50
  attack.cw_l2.initial_const = 0.01
  if "fast" in variants:
    config.data.num_examples = 64
    attack.batch_size = 32
    attack.pgd_linf.steps = attack.pgd_l2.steps = 5
    attack.pgd_linf.rel_stepsize = attack.pgd_l2.rel_stepsize = 0.5
    attack.deepfool.steps = 20
    attack.cw_l2.binary_search_steps, attack.cw_l2.steps = 3, 20
  return config
