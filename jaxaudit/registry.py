"""Lazy name -> object registries: a config key names a module's entry point.

One registry per pluggable kind (models, stages, attacks, attribution methods).
Entries are `"module:attribute"` strings imported on first use, so a reader goes
from a config key to the code in one hop and unused entries cost no import.
"""

from __future__ import annotations

import importlib
from typing import Any

from jaxaudit.errors import ConfigError


class Registry:
  """Maps names to `"package.module:attribute"` targets, imported on `get`."""

  def __init__(self, kind: str, field: str, entries: dict[str, str]):
    """Args:
      kind: what the entries are ("model", "stage", ...), used in errors.
      field: the config field that names an entry, used in errors.
      entries: name -> "package.module:attribute".
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

  def get(self, name: str) -> Any:
    self.check(name)
    module_name, attribute = self._entries[name].split(":")
    return getattr(importlib.import_module(module_name), attribute)
