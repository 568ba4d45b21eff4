"""Retraining a ResNet-20 on 5% pixel subsets (BGSIS of the pretrained ResNet-20)
against random 5% subsets, on the CIFAR-10 test images split 8,000 / 2,000.

  python -m jaxaudit.retrain --config=configs/cifar10_sis_retrain.py \
      --workdir=/tmp/jaxaudit-sis-retrain

To fit a 2-core CPU budget, selection removes 30% of the remaining pixels per
step, at least 20 (11 steps; the 5% subset, 52 pixels, is still decided in steps
of 19-25), and each model trains 200 steps of 128 (3.2 epochs of the 8,000
images). On an idle 2-core CPU ranking took 8.5 minutes and the two trainings
13.5; held-out accuracy 0.512 on SIS subsets vs 0.379 on random ones.
`configs/cifar10_sis_retrain.py:fast` (tests) ranks 64 images and trains a few
steps.
"""

import ml_collections

from jaxaudit.stages import sis


def get_config(arg: str = ""):
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.batch_size = 250  # BGSIS ranking batch (global).
  config.model = ml_collections.ConfigDict({
      "name": "cifar_resnet20",
      "checkpoint": "../shared/data/cifar10/resnet20.th",
      "cache_dir": "", "random_init_seed": -1})
  config.data = ml_collections.ConfigDict({
      "npz": "../shared/data/cifar10/test_jpeg.npz",
      "num_examples": 0})  # 0 = all 10,000.
  config.split = ml_collections.ConfigDict({"num_train": 8000})
  config.sis = ml_collections.ConfigDict({
      "baseline": sis.default_config().baseline,
      "step_fraction": 0.3,
      "min_step_fraction": 0.02,
      "fraction": 0.05})
  config.train = ml_collections.ConfigDict({
      "seed": 0, "batch_size": 128, "num_steps": 200, "chunk_steps": 100,
      "learning_rate": 0.1, "warmup_steps": 10, "weight_decay": 5e-4})
  if arg == "fast":
    config.data.num_examples = 64
    config.split.num_train = 48
    config.batch_size = 32
    config.train.batch_size = 16
    config.train.num_steps = 4
    config.train.chunk_steps = 2
    config.train.warmup_steps = 1
  return config
