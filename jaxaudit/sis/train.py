"""Retrains a CIFAR-10 ResNet-20 on BGSIS 5% pixel subsets and on random ones.

  python -m jaxaudit.sis.train --config=configs/cifar10_sis_retrain.py \
      --workdir=/tmp/jaxaudit-sis-retrain

Writes `<workdir>/retrain.json` with both held-out accuracies; a killed run
resumes from its orbax checkpoints and cached rankings.
"""

import json
import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from jaxaudit import sharding
from jaxaudit import summary as summary_lib
from jaxaudit.errors import ConfigError, DataError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder.", required=True)


def main(argv):
  del argv
  from jaxaudit.sis import retrain  # pylint: disable=g-import-not-at-top
  if _CONFIG.value is None:
    sys.exit("error: --config is required, e.g. "
             "--config=configs/cifar10_sis_retrain.py")
  try:
    results = retrain.run(_CONFIG.value, _WORKDIR.value, sharding.make_mesh())
  except (ConfigError, DataError) as e:
    sys.exit(f"error: {e}")
  summary_lib.write_json(os.path.join(_WORKDIR.value, "retrain.json"), results)
  print(json.dumps(summary_lib.to_json(results), indent=1, sort_keys=True))


if __name__ == "__main__":
  app.run(main)
