"""Errors raised for bad user input, each naming the field or file at fault."""


class ConfigError(ValueError):
  """A config field is missing, of the wrong type, or names an unknown entry."""


class DataError(ValueError):
  """A data file or folder is missing, unreadable or inconsistent."""


class WeightsError(DataError):
  """A weight file is unreadable, malformed or breaks a safety rule.

  The message names the file, the tensor (or storage) concerned and the rule
  broken; nothing of the file is returned.
  """


class JudgementsError(DataError):
  """A human study's judgements file is unreadable, malformed or foreign.

  Foreign: written for another run, or with answers the run's tasks and
  design do not allow. The one-line message names the file and the problem;
  nothing of the file is used.
  """


class ParameterError(ValueError):
  """A method (an attack, an attribution, a selection) got a bad parameter.

  Method packages raise it naming their own parameter; the stage that passed
  the value turns it into a `ConfigError` naming the config field.

  Attributes:
    parameter: the parameter's name (the leaf of its config field).
    reason: what is wrong with it.
  """

  def __init__(self, parameter: str, reason: str):
    super().__init__(f"{parameter}: {reason}")
    self.parameter = parameter
    self.reason = reason
