"""Every field a jaxaudit job reads, with its default: job-level sections plus
each stage's own.

Config files in `configs/` start from `base_config()` and override a few
fields; every field can then be overridden from the command line, e.g.
`--config.attack.pgd_linf.steps=20`.
"""

from __future__ import annotations

import importlib

import ml_collections

from jaxaudit import study_inputs
from jaxaudit.stages import STAGE_NAMES
from jaxaudit.taxonomy import judgement


def base_config() -> ml_collections.ConfigDict:
  """Every field jaxaudit reads, with its default."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.stages = "evaluate"  # Comma-separated, run in this order.
  config.batch_size = 32  # Global; rounded up to a multiple of the devices.
  config.model = ml_collections.ConfigDict({
      # A built-in (efficientnet_lite0, cifar_resnet20, ...) or a factory:
      # "package.module:make" / "path/to/file.py:make" (jaxaudit.models.factory).
      "name": "efficientnet_lite0",
      # "" = the factory's params or the weights a built-in's package ships;
      # else a torch, .npz, .safetensors, Flax .msgpack file or orbax folder.
      "checkpoint": "",
      "cache_dir": "",  # Converted weights are cached here ("" = off).
      "random_init_seed": -1,  # >= 0: random weights, no checkpoint.
      # Set by jaxaudit.audit for a model given in memory (a hash of its
      # params), so a workdir is never resumed for another model.
      "fingerprint": "",
  })
  config.data = ml_collections.ConfigDict({
      "dir": "",  # A folder of images (ImageNet names or class subfolders).
      "npz": "",  # An .npz with images uint8 [N, H, W, 3] and labels [N].
      "tfds_name": "",  # A prepared TFDS dataset, read with tfds.data_source.
      # Data shipped with a dependency: "digits" (scikit-learn's handwritten
      # digits, 16x16 RGB; splits "train" and "test").
      "builtin": "",
      "split": "validation",
      "tfds_data_dir": "",
      "num_examples": 0,  # 0 = all; N = the first N in a fixed order.
      "skip_bad": False,  # Skip undecodable images with a warning.
      "decode_threads": 0,  # 0 = one per CPU core.
      "fingerprint": "",  # As config.model.fingerprint, for in-memory images.
  })
  config.resume = ml_collections.ConfigDict({
      "shard_size": 1024,  # Process-local examples per resumable shard; 0 = off.
  })
  config.records = ml_collections.ConfigDict({"format": "parquet"})
  # The one judgement of which labels a person accepts (attack, mistakes,
  # criticism): jaxaudit.taxonomy.judgement.
  config.taxonomy = judgement.default_config()
  config.report = ml_collections.ConfigDict({"title": "jaxaudit report"})
  # The human study's key and statistics (jaxaudit.study_inputs); the
  # judgements themselves come in through config.<stage>.judgements.
  config.study = study_inputs.default_config()
  for name in STAGE_NAMES:
    module = importlib.import_module(f"jaxaudit.stages.{name}")
    config[name] = module.default_config()
  return config


CIFAR10_SHARED = "../shared/data/cifar10"


def cifar10_config(depth: int = 20,
                   folder: str = CIFAR10_SHARED) -> ml_collections.ConfigDict:
  """`base_config()` for a pretrained CIFAR ResNet on the CIFAR-10 test .npz.

  Args:
    depth: 20 or 56 (the shared `resnet<depth>.th` weights).
    folder: holds `resnet<depth>.th` and `test_jpeg.npz` (default: the shared
      data beside the checkout, relative to the repository root).
  """
  config = base_config()
  config.batch_size = 250
  config.model.name = f"cifar_resnet{depth}"
  config.model.checkpoint = f"{folder}/resnet{depth}.th"
  config.data.npz = f"{folder}/test_jpeg.npz"
  return config
