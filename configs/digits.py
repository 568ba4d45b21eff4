"""The shipped test model, `digits_cnn`, on scikit-learn's 500 test digits:
every stage, offline, in about a minute on one CPU.

  python -m jaxaudit.main --config=configs/digits.py --workdir=/tmp/jaxaudit-digits
  python -m jaxaudit.main --config=configs/digits.py:retrain \
      --workdir=/tmp/jaxaudit-digits-retrain

The model and the data need nothing from outside the installed packages, so the
tests run this config in any clone. `configs/digits.py:fast` audits the first
64 digits (tests); `:retrain` runs sis and retrain on the 1,297 train digits
(fresh models trained on SIS subsets vs random ones). Epsilons are sized for
the 16 x 16 digits, whose strokes survive perturbations that fool CIFAR models.
"""

from jaxaudit import job_config

STAGES = "evaluate,attack,mistakes,explain,criticism,sis"


def get_config(arg: str = ""):
  variants = set(filter(None, arg.split(",")))
  config = job_config.base_config()
  config.stages = STAGES
  config.batch_size = 64
  config.model.name = "digits_cnn"
  config.data.builtin = "digits"
  config.data.split = "test"
  attack = config.attack
  attack.attacks = "fgsm,pgd_linf,pgd_l2,deepfool,cw_l2"
  for name in ("fgsm", "pgd_linf", "fmn_linf", "apgd_ce", "apgd_t", "fab_t",
               "square"):
    attack[name].epsilons = (4.0, 8.0, 16.0, 32.0)
  attack.autoattack.epsilons = (8.0, 16.0)
  for name in ("pgd_l2", "deepfool", "cw_l2", "fmn_l2"):
    attack[name].epsilons = (0.25, 0.5, 1.0, 2.0)
  attack.pgd_linf.steps = attack.pgd_l2.steps = 10
  attack.cw_l2.stepsize = 0.01
  config.criticism.group_by = "true_class"
  config.sis.threshold = 0.9
  if "retrain" in variants:
    # Retraining on SIS subsets: fresh digits CNNs on the top-ranked 5% of
    # pixels vs random 5%, trained on the first 75% of the 1,297 train digits
    # and scored on the rest; coarse BGSIS steps; no flips (a mirrored digit
    # is no digit).
    config.stages = "sis,retrain"
    config.data.split = "train"
    config.sis.step_fraction = 0.3
    config.sis.min_step_fraction = 0.02
    config.retrain.held_out_share = 0.25
    config.retrain.batch_size = 32
    config.retrain.learning_rate = 0.2
    config.retrain.horizontal_flip = False
  if "fast" in variants:
    config.data.num_examples = 64
    config.batch_size = 32
  return config
