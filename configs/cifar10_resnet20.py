"""The CIFAR-10 ResNet-20 on the 10,000 CIFAR-10 test images in an .npz.

  python -m jaxaudit.main --config=configs/cifar10_resnet20.py \
      --config.data.npz=../shared/data/cifar10/test_jpeg.npz --workdir=/tmp/jaxaudit-c10

`configs/cifar10_resnet20.py:resnet56` evaluates the ResNet-56 instead.
"""

from jaxaudit import config_defaults


def get_config(arg: str = ""):
  config = config_defaults.default_config()
  depth = 56 if arg == "resnet56" else 20
  config.stages = "evaluate"
  config.batch_size = 250
  config.model.name = f"cifar_resnet{depth}"
  config.model.checkpoint = f"../shared/data/cifar10/resnet{depth}.th"
  config.data.npz = "../shared/data/cifar10/test_jpeg.npz"
  return config
