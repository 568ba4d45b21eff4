"""The CIFAR-10 ResNet-20 on the 10,000 CIFAR-10 test images in an .npz.

  python -m jaxaudit.main --config=configs/cifar10_resnet20.py \
      --config.data.npz=../shared/data/cifar10/test_jpeg.npz --workdir=/tmp/jaxaudit-c10

`configs/cifar10_resnet20.py:resnet56` evaluates the ResNet-56 instead. The sweep
runs both:

  python launch/sweep.py --config=configs/cifar10_resnet20.py --workdir=/tmp/c10-sweep
"""

from jaxaudit import job_config
from jaxaudit import sweep

SHARED = job_config.CIFAR10_SHARED


def get_config(arg: str = ""):
  config = job_config.cifar10_config(56 if arg == "resnet56" else 20)
  config.stages = "evaluate"
  return config


def get_sweep(arg: str = ""):
  del arg
  return sweep.zip_axes(
      ("model.name", ["cifar_resnet20", "cifar_resnet56"]),
      ("model.checkpoint", [f"{SHARED}/resnet20.th", f"{SHARED}/resnet56.th"]))
