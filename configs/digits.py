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


def get_config(arg: str = ""):
  return job_config.digits_config(arg)
