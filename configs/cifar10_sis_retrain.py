"""Retraining ResNet-20s on 5% pixel subsets of CIFAR-10 (Carter et al. 2021,
Sec. 4): the pretrained ResNet-20's top-ranked pixels (BGSIS, the sis stage)
against as many random pixels.

  python -m jaxaudit.main --config=configs/cifar10_sis_retrain.py \
      --workdir=/tmp/jaxaudit-sis-retrain

Only CIFAR-10's 10,000 test images ship here, so the retrain stage trains on
the first 8,000 (by id) and holds out the last 2,000 (`held_out_share` 0.2); the
.npz is class-interleaved, so both parts hold every class about equally. To fit
a 2-core CPU budget, selection removes 30% of the remaining pixels per step, at
least 20 (11 steps; the 5% subset, 52 pixels, is still decided in steps of
19-25), and each of the 2 x 3 fresh ResNet-20s trains 200 steps of 128 (3.2
epochs of the 8,000 images). A killed run resumes from the sis stage's shards
and each model's orbax checkpoints (`<workdir>/checkpoints/retrain`).
`configs/cifar10_sis_retrain.py:fast` (tests) ranks 64 images and trains a few
steps.
"""

from jaxaudit import job_config


def get_config(arg: str = ""):
  config = job_config.cifar10_config()
  config.stages = "evaluate,sis,retrain"
  config.sis.block_size = 1
  config.sis.step_fraction = 0.3
  config.sis.min_step_fraction = 0.02
  config.retrain.fraction = 0.05
  config.retrain.held_out_share = 0.2
  config.retrain.num_steps = 200
  config.retrain.batch_size = 128
  if arg == "fast":
    config.data.num_examples = 64
    config.batch_size = 32
    config.retrain.held_out_share = 0.25
    config.retrain.num_seeds = 2
    config.retrain.batch_size = 16
    config.retrain.num_steps = 4
    config.retrain.chunk_steps = 2
    config.retrain.warmup_steps = 1
  return config
