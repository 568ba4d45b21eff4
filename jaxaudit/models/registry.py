"""The built-in architectures: `config.model.name` -> a module's `ENTRY`.

Names with a colon are a user's own factory instead (`jaxaudit.models.factory`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from jaxaudit.models.classifier import Classifier, Params
from jaxaudit.registry import Registry


@dataclasses.dataclass(frozen=True)
class ModelEntry:
  """A built-in architecture: how to build it and import its torch weights.

  Attributes:
    make_classifier: registry name -> `Classifier`.
    convert: (torch-named `convert.StateDict`, registry name) -> Flax
      variables; None for a model whose weights are saved under its own
      param paths.
    default_checkpoint: registry name -> the path of weights an installed
      package ships, if any.
  """
  make_classifier: Callable[[str], Classifier]
  convert: Callable[[Any, str], Params] | None
  default_checkpoint: Callable[[str], str] | None = None


MODELS = Registry("model", "config.model.name", {
    **{f"efficientnet_lite{v}": "jaxaudit.models.efficientnet_lite:ENTRY"
       for v in (0, 1, 2)},
    **{f"resnet{d}": "jaxaudit.models.resnet:ENTRY"
       for d in (18, 34, 50, 101, 152)},
    **{f"cifar_resnet{d}": "jaxaudit.models.cifar_resnet:ENTRY"
       for d in (20, 32, 44, 56, 110)},
    **{name: "jaxaudit.models.digits_cnn:ENTRY"
       for name in ("digits_cnn", "digits_cnn_early")},
})
