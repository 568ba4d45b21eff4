"""Stage registry: each name in `config.stages` is a module `jaxaudit/stages/<name>.py`
with `default_config()` (its `config.<name>` section), `check_config`, `contract`
and `run` (see `jaxaudit.stages.base`)."""

from jaxaudit.registry import Registry

STAGE_NAMES = ("evaluate", "mistakes", "attack", "explain", "criticism", "sis",
               "retrain", "shift")

STAGES = Registry("stage", "config.stages",
                  {name: f"jaxaudit.stages.{name}" for name in STAGE_NAMES})
