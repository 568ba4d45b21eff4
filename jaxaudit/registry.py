"""Lazy name -> object registries: a config key names a module's entry point.

One registry per pluggable kind (models, stages, attacks, attribution methods).
Entries are `"module:attribute"` strings imported on first use, so a reader goes
from a config key to the code in one hop and unused entries cost no import.
"""

from __future__ import annotations

import importlib
from typing import Any

from jaxaudit.errors import ConfigError


def import_target(target: str) -> Any:
  """"package.module:attribute" -> the attribute ("package.module" -> the
  module), looked up on every call (so a test that swaps a module's function
  swaps it for every caller)."""
  module_name, _, attribute = target.partition(":")
  module = importlib.import_module(module_name)
  return getattr(module, attribute) if attribute else module


class Registry:
  """Maps names to `"package.module:attribute"` targets, imported on `get`."""

  def __init__(self, kind: str, field: str, entries: dict[str, str]):
    """Args:
      kind: what the entries are ("model", "stage", ...), used in errors.
      field: the config field that names an entry, used in errors.
      entries: name -> "package.module:attribute" (or "package.module"),
        imported on `get`, or the entry itself (a typed spec).
    """
    self.kind = kind
    self.field = field
    self._entries = dict(entries)

  def names(self) -> list[str]:
    return sorted(self._entries)

  def __contains__(self, name: str) -> bool:
    return name in self._entries

  def check(self, name: str, hint: str = "") -> None:
    """Raises `ConfigError` naming the field and the valid names if unknown."""
    if name not in self._entries:
      raise ConfigError(
          f"{self.field}: unknown {self.kind} '{name}'; valid: "
          + ", ".join(self.names()) + hint)

  def parse(self, value: Any, field: str = "",
            allow_empty: bool = False) -> list[str]:
    """A comma-separated list of entry names ("a,b") -> checked names in order.

    Args:
      value: the config value.
      field: the config field named in errors (default: the registry's).
      allow_empty: "" is an empty list rather than an error.

    Raises:
      ConfigError: naming the field: not a string, empty, an unknown name,
        or a name listed twice.
    """
    field = field or self.field
    if not isinstance(value, str):
      raise ConfigError(f"{field} must be a comma-separated string, got "
                        f"{type(value).__name__}")
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names and not allow_empty:
      raise ConfigError(f"{field} is empty; valid: " + ", ".join(self.names()))
    for name in names:
      if name not in self._entries:
        raise ConfigError(f"{field}: unknown {self.kind} '{name}'; valid: "
                          + ", ".join(self.names()))
    if len(set(names)) != len(names):
      raise ConfigError(f"{field} lists a {self.kind} twice: {value}")
    return names

  def get(self, name: str) -> Any:
    """The entry: `module:attribute`'s attribute, a whole `module`, or the
    entry itself where it is not a string."""
    self.check(name)
    entry = self._entries[name]
    return entry if not isinstance(entry, str) else import_target(entry)
