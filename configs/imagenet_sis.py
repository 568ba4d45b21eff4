"""Overinterpretation on the ImageNet sample: EfficientNet-Lite0, BGSIS on
single pixels for the first 64 images, exact backward selection on an 8 x 8
block grid for the first 8.

  python -m jaxaudit.main --config=configs/imagenet_sis.py \
      --config.data.dir=../shared/data/imagenet-sample --workdir=/tmp/jaxaudit-in-sis

Features are single pixels (50,176 an image), as in Carter et al.'s ImageNet
code. Ranked by the gradient, 7 x 7 or 28 x 28-pixel blocks keep the prediction
on no 10% subset of the sample: the gradient at the full image predicts what
removing one pixel does, not what removing a whole block does, while exact
backward selection on the same 28 x 28 blocks does find 10% subsets that keep
it (README, "sis"). Removal: 10% of the remaining pixels per step, at least
0.2% of all (100 pixels), 48 steps. Exact backward selection runs on the 8 x 8
grid (2,080 forward passes an image) for the first 8 images. About 10 minutes
on two CPU cores.
"""

from jaxaudit import job_config


def get_config(arg: str = ""):
  del arg
  config = job_config.base_config()
  config.data.dir = "../shared/data/imagenet-sample"
  config.batch_size = 32
  config.stages = "evaluate,sis"
  config.data.num_examples = 64
  config.sis.block_size = 1
  config.sis.step_fraction = 0.1
  config.sis.min_step_fraction = 0.002
  config.sis.batch_size = 16
  config.sis.exact.num_examples = 8
  config.sis.exact.block_size = 28
  config.sis.exact.batch_size = 4
  return config
