"""Errors raised for bad user input, each naming the field or file at fault."""


class ConfigError(ValueError):
  """A config field is missing, of the wrong type, or names an unknown entry."""


class DataError(ValueError):
  """A data file or folder is missing, unreadable or inconsistent."""
