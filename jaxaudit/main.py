"""Runs a jaxaudit job.

  python -m jaxaudit.main --config=configs/default.py --workdir=/tmp/jaxaudit

Any config field can be overridden, e.g. `--config.stages=evaluate,attack`.
On a pod, run the same command on every host (see launch/).
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from jaxaudit import distributed
from jaxaudit.errors import ConfigError, DataError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output folder.", required=True)
_COORDINATOR = flags.DEFINE_string("coordinator_address", "",
                                   "host:port of process 0 (multi-process).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 0, "Processes in the job.")
_PROCESS_ID = flags.DEFINE_integer("process_id", -1, "This process's index.")
_MULTIHOST = flags.DEFINE_bool(
    "multihost", False, "Join a multi-host job described by the environment "
    "(TPU VM pods); SLURM jobs and explicit flags are detected without it.")


def main(argv):
  del argv
  distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value,
                         _PROCESS_ID.value, _MULTIHOST.value)
  from jaxaudit import pipeline  # pylint: disable=g-import-not-at-top
  if _CONFIG.value is None:
    sys.exit("error: --config is required, e.g. --config=configs/default.py")
  try:
    pipeline.run(_CONFIG.value, _WORKDIR.value)
  except (ConfigError, DataError) as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)
