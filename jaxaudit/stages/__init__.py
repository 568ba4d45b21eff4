"""Stage registry: each name in `config.stages` is a module `jaxaudit/stages/<name>.py`
with `default_config()` (its `config.<name>` section) and `run(ctx) -> StageOutput`."""

from jaxaudit.registry import Registry

STAGE_NAMES = ("evaluate", "mistakes", "attack", "explain", "criticism", "sis")

STAGES = Registry("stage", "config.stages",
                  {name: f"jaxaudit.stages.{name}:run" for name in STAGE_NAMES})
