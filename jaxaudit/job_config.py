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
  config.model = model_section()
  # Several models audited side by side on the same examples: name -> a
  # model section (`model_section(...)`); empty = `config.model` alone. Each
  # runs every stage into <workdir>/models/<name>/; `config.compare` then
  # joins them per example (jaxaudit.model_set, jaxaudit.compare).
  config.models = ml_collections.ConfigDict()
  config.ensemble = ml_collections.ConfigDict({
      "members": "",  # Comma-separated names of config.models ("" = none).
      "name": "ensemble",
      # Input side of an ensemble whose members take different sizes (each
      # member gets it resized to its own); 0 = the members' common size.
      "input_size": 0,
  })
  config.compare = ml_collections.ConfigDict({
      "gallery": 6,  # Examples shown per pair of models in each gallery.
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


def model_section(**fields) -> ml_collections.ConfigDict:
  """A model's config section (`config.model`, or one of `config.models`):
  every field with its default, `fields` overriding them."""
  section = ml_collections.ConfigDict({
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
  unknown = sorted(set(fields) - set(section.keys()))
  if unknown:
    raise KeyError(f"model_section: no field {', '.join(unknown)}")
  section.update(fields)
  return section


DIGITS_STAGES = "evaluate,attack,mistakes,explain,criticism,sis"


def digits_config(arg: str = "") -> ml_collections.ConfigDict:
  """`configs/digits.py`: the shipped `digits_cnn` on the 500 test digits,
  every stage; `arg` "fast" (64 digits) and/or "retrain" (see that file)."""
  variants = set(filter(None, arg.split(",")))
  config = base_config()
  config.stages = DIGITS_STAGES
  config.batch_size = 64
  config.model.name = "digits_cnn"
  config.data.builtin = "digits"
  config.data.split = "test"
  attack = config.attack
  attack.attacks = "fgsm,pgd_linf,pgd_l2,deepfool,cw_l2"
  for name in ("fgsm", "pgd_linf", "fmn_linf", "apgd_ce", "apgd_t", "fab_t",
               "square"):
    attack[name].epsilons = (4.0, 8.0, 16.0, 32.0)
  attack.autoattack.epsilons = (8.0, 16.0)
  for name in ("pgd_l2", "deepfool", "cw_l2", "fmn_l2"):
    attack[name].epsilons = (0.25, 0.5, 1.0, 2.0)
  attack.pgd_linf.steps = attack.pgd_l2.steps = 10
  attack.cw_l2.stepsize = 0.01
  config.criticism.group_by = "true_class"
  config.sis.threshold = 0.9
  if "retrain" in variants:
    # Retraining on SIS subsets: fresh digits CNNs on the top-ranked 5% of
    # pixels vs random 5%, trained on the first 75% of the 1,297 train digits
    # and scored on the rest; coarse BGSIS steps; no flips (a mirrored digit
    # is no digit).
    config.stages = "sis,retrain"
    config.data.split = "train"
    config.sis.step_fraction = 0.3
    config.sis.min_step_fraction = 0.02
    config.retrain.held_out_share = 0.25
    config.retrain.batch_size = 32
    config.retrain.learning_rate = 0.2
    config.retrain.horizontal_flip = False
  if "fast" in variants:
    config.data.num_examples = 64
    config.batch_size = 32
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


def full_attack_sweep(cfg: ml_collections.ConfigDict, linf: tuple[float, ...],
                   pgd_l2: tuple[float, ...],
                   minimal_l2: tuple[float, ...]) -> None:
  """Sets `config.attack` to full-strength attacks over epsilon sweeps.

  Args:
    cfg: `config.attack`, changed in place.
    linf: FGSM, PGD-L-inf, FMN-L-inf and AutoAttack (L-inf, standard)
      epsilons (in 1/255).
    pgd_l2: PGD-L2 epsilons ([0, 1]-pixel units).
    minimal_l2: DeepFool, C&W-L2 and FMN-L2 epsilons at which their minimal
      perturbations are scored.
  """
  cfg.fgsm.epsilons = linf
  cfg.pgd_linf.epsilons = linf
  cfg.pgd_l2.epsilons = pgd_l2
  for name in ("pgd_linf", "pgd_l2"):
    cfg[name].steps = 10
    cfg[name].rel_stepsize = 0.25
    cfg[name].random_start = True
  cfg.deepfool.epsilons = minimal_l2
  cfg.deepfool.steps = 50
  cfg.deepfool.candidates = 10
  cfg.cw_l2.epsilons = minimal_l2
  cfg.cw_l2.binary_search_steps = 5
  cfg.cw_l2.steps = 50
  cfg.cw_l2.initial_const = 0.01
  cfg.fmn_linf.epsilons = linf
  cfg.fmn_l2.epsilons = minimal_l2
  for name in ("fmn_linf", "fmn_l2"):
    cfg[name].steps = 100
  cfg.autoattack.epsilons = linf
