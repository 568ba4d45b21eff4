"""Model registry: `config.model.name` -> a module's `ENTRY`; see `load_model`."""

from jaxaudit.models.base import Classifier, ModelEntry, Params, Preprocessing
from jaxaudit.models.loading import load_model, MODELS

__all__ = ["Classifier", "ModelEntry", "Params", "Preprocessing", "load_model",
           "MODELS"]
