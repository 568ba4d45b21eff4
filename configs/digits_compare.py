"""Two digits CNNs and their ensemble, side by side on scikit-learn's 500 test
digits: the shipped `digits_cnn` (1,500 training steps) against
`digits_cnn_early` (300 steps from another seed), every stage per model, then
the comparison per example (report.html; models/<name>/ holds each model's
own run).

  python -m jaxaudit.main --config=configs/digits_compare.py \
      --workdir=/tmp/jaxaudit-digits-compare

`configs/digits_compare.py:fast` audits the first 64 digits with fewer attacks
(tests). Any model field is a flag, e.g. --config.models.early.checkpoint=...
"""

from jaxaudit import job_config


def get_config(arg: str = ""):
  variants = set(filter(None, arg.split(",")))
  config = job_config.digits_config("fast" if "fast" in variants else "")
  config.models.shipped = job_config.model_section(name="digits_cnn")
  config.models.early = job_config.model_section(name="digits_cnn_early")
  config.ensemble.members = "early,shipped"
  if "fast" in variants:
    config.attack.attacks = "pgd_linf,deepfool"
    config.attack.pgd_linf.steps = 5
    config.attack.deepfool.steps = 10
    config.explain.methods = "saliency,integrated_gradients"
    config.sis.step_fraction = 0.3
    config.sis.min_step_fraction = 0.02
  return config
