"""Classifiers: the interface every stage audits, the built-in architectures,
user factories and checkpoints; see `load_model`."""

from jaxaudit.models.classifier import Classifier, Normalization, Params
from jaxaudit.models.classifier import Preprocessing
from jaxaudit.models.loading import check_fits, load_model
from jaxaudit.models.registry import ModelEntry, MODELS

__all__ = ["Classifier", "ModelEntry", "Normalization", "Params",
           "Preprocessing", "check_fits", "load_model", "MODELS"]
