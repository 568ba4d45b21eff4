"""Overinterpretation on CIFAR-10: BGSIS for the ResNet-20 on the test images,
and exact backward selection beside it on the first 32.

  python -m jaxaudit.main --config=configs/cifar10_sis.py --workdir=/tmp/jaxaudit-c10-sis

Features are single pixels, one per cent of them removed per selection step, and
the SIS must keep p(predicted class) >= 0.99, as in Carter et al. (2021). Exact
backward selection scores every remaining feature's removal with a forward pass
(32,896 an image on 2 x 2-pixel features, about 40 s on two CPU cores), so it
runs on the first 32 images, beside BGSIS on the same 2 x 2-pixel grid
(`summary.json["sis"]["exact_comparison"]`).
`configs/cifar10_sis.py:fast` runs 256 images with 5% steps and compares the two
selections on 2 images (a few minutes on two CPU cores).
"""

from jaxaudit import job_config


def get_config(arg: str = ""):
  config = job_config.cifar10_config()
  config.stages = "evaluate,sis"
  config.batch_size = 128
  config.sis.threshold = 0.99
  config.sis.block_size = 1
  config.sis.step_fraction = 0.0
  config.sis.min_step_fraction = 0.01
  config.sis.exact.num_examples = 32
  config.sis.exact.block_size = 2
  if arg == "fast":
    config.data.num_examples = 256
    config.sis.min_step_fraction = 0.05
    config.sis.exact.num_examples = 2
  return config
