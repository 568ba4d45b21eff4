"""The demo job: EfficientNet-Lite0 on real photos that scikit-image ships, every
stage (evaluation, adversarial attacks, mistakes, explanations, MMD-critic,
overinterpretation).

Runs offline on a fresh install, on one CPU in a few minutes:

  python -m jaxaudit.main --config=configs/default.py --workdir=/tmp/jaxaudit-demo

`configs/default.py:fast` runs only the evaluation (for tests).
"""

from jaxaudit import job_config

STAGES = "evaluate,attack,mistakes,explain,criticism,sis"


def get_config(arg: str = ""):
  config = job_config.base_config()
  config.stages = STAGES
  config.batch_size = 8
  if arg == "fast":
    config.stages = "evaluate"
  return config
