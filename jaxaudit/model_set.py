"""The models of a job: `config.model`, or several (`config.models`) and
their ensemble (`config.ensemble`), each loaded and named.

`config.models` is a ConfigDict of named model sections (the fields of
`config.model`; `job_config.model_section`), so every field of every model is
a command-line override (`--config.models.resnet56.checkpoint=...`). Models
run in the order of their names; the ensemble, when `config.ensemble.members`
names at least two of them, runs last as one more model (mean probability,
`jaxaudit.models.ensemble`). A failure to load names the model's own field.
"""

from __future__ import annotations

import dataclasses
import re

import ml_collections

from jaxaudit.errors import ConfigError, DataError, ParameterError
from jaxaudit.models import Classifier, Params, load_model
from jaxaudit.models.ensemble import make_ensemble

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclasses.dataclass(frozen=True)
class Member:
  """One audited model.

  Attributes:
    name: its name in folders (`<workdir>/models/<name>`), summaries and the
      report.
    field: the config field it comes from ("config.models.<name>" or
      "config.ensemble").
    classifier: the model.
    params: its params (an ensemble's: its members', as a tuple).
    members: an ensemble's member names (empty for a single model).
  """
  name: str
  field: str
  classifier: Classifier
  params: Params
  members: tuple[str, ...] = ()


def ensemble_members(config: ml_collections.ConfigDict) -> list[str]:
  """The names in `config.ensemble.members` ("" = no ensemble)."""
  return [m.strip() for m in str(config.ensemble.members).split(",")
          if m.strip()]


def check_names(config: ml_collections.ConfigDict) -> list[str]:
  """`config.models`'s names, sorted, checked with the ensemble's.

  Raises:
    ConfigError: a name unfit for a folder, an ensemble of fewer than two
      models or of a model not in `config.models`, or an ensemble named as
      one of them.
  """
  names = sorted(config.models.keys())
  for name in names:
    if not _NAME.match(name):
      raise ConfigError(f"config.models.{name}: a model name is a letter then "
                        "up to 63 letters, digits, '_' or '-'")
  members = ensemble_members(config)
  if members:
    unknown = [m for m in members if m not in names]
    if unknown:
      raise ConfigError(f"config.ensemble.members: {', '.join(unknown)} not in "
                        f"config.models ({', '.join(names) or 'none'})")
    twice = sorted({m for m in members if members.count(m) > 1})
    if twice:
      raise ConfigError(f"config.ensemble.members: {', '.join(twice)} named "
                        "twice (members weigh equally)")
    if len(members) < 2:
      raise ConfigError("config.ensemble.members: an ensemble needs at least "
                        "two different models")
    ensemble = config.ensemble.name
    if not isinstance(ensemble, str) or not _NAME.match(ensemble):
      raise ConfigError(f"config.ensemble.name: {ensemble!r} is not a model "
                        "name (a letter, then letters, digits, '_' or '-')")
    if ensemble in names:
      raise ConfigError(f"config.ensemble.name: '{ensemble}' is also in "
                        "config.models")
  return names


def _renamed(error: Exception, field: str) -> Exception:
  """The loader's error with `config.model.` replaced by the model's field."""
  message = str(error)
  if "config.model." in message or "config.model " in message:
    message = message.replace("config.model", field)
  else:
    message = f"{field}: {message}"
  return type(error)(message)


def load_members(config: ml_collections.ConfigDict,
                 given: dict[str, tuple[Classifier, Params]] | None = None
                 ) -> list[Member]:
  """Every model of `config.models`, then the ensemble if one is declared.

  Args:
    config: the job config (`models`, `ensemble`).
    given: name -> (classifier, params) for models given in memory
      (`jaxaudit.audit(models=...)`), used instead of loading their section.

  Returns:
    The models, in name order, the ensemble last.

  Raises:
    ConfigError / DataError: naming `config.models.<name>` (a model that
      fails to load) or `config.ensemble` (members that cannot be averaged).
  """
  given = given or {}
  members = []
  for name in check_names(config):
    field = f"config.models.{name}"
    if name in given:
      classifier, params = given[name]
    else:
      try:
        classifier, params = load_model(config.models[name])
      except (ConfigError, DataError) as e:
        raise _renamed(e, field) from e
    members.append(Member(name, field,
                          dataclasses.replace(classifier, name=name), params))
  chosen = ensemble_members(config)
  if chosen:
    by_name = {m.name: m for m in members}
    try:
      classifier, params = make_ensemble(
          [(by_name[n].classifier, by_name[n].params) for n in chosen],
          input_size=int(config.ensemble.input_size),
          name=config.ensemble.name)
    except ParameterError as e:
      raise ConfigError(f"config.ensemble.{e.parameter}: {e.reason}") from e
    members.append(Member(config.ensemble.name, "config.ensemble", classifier,
                          params, tuple(chosen)))
  return members
