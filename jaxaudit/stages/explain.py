"""Placeholder: being written."""
import ml_collections


def default_config():
  return ml_collections.ConfigDict()


def run(ctx):
  raise NotImplementedError("explain")
