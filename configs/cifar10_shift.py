"""CIFAR-10 ResNet-20 under the 19 common corruptions at 5 severities
(make_cifar_c.py's parameters, as CIFAR-10-C was made).

  python -m jaxaudit.main --config=configs/cifar10_shift.py \
      --config.data.npz=../shared/data/cifar10/test_jpeg.npz \
      --workdir=/tmp/jaxaudit-c10-shift

The first 2,000 test images (class-balanced: the .npz interleaves classes);
`:resnet56` runs the ResNet-56, `:fast` the first 64 images (tests). No mCE:
AlexNet's baseline errors are ImageNet's.
"""

from jaxaudit import job_config


def get_config(arg: str = ""):
  variants = set(filter(None, arg.split(",")))
  config = job_config.cifar10_config(56 if "resnet56" in variants else 20)
  config.stages = "evaluate,shift"
  config.data.num_examples = 2000
  config.shift.corruptions = "all"
  config.shift.parameter_set = "cifar"
  config.shift.batch_size = 100
  if "fast" in variants:
    config.data.num_examples = 64
    config.shift.batch_size = 32
  return config
