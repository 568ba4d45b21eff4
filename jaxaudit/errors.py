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
