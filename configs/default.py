"""The demo job: EfficientNet-Lite0 on real photos that scikit-image ships.

Runs offline on a fresh install, on one CPU in a few minutes:

  python -m jaxaudit.main --config=configs/default.py --workdir=/tmp/jaxaudit-demo

`configs/default.py:fast` shrinks the work for tests.
"""

from jaxaudit import config_defaults


def get_config(arg: str = ""):
  config = config_defaults.default_config()
  config.stages = "evaluate"
  config.batch_size = 8
  if arg == "fast":
    config.batch_size = 4
  return config
