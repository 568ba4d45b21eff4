"""EfficientNet-Lite0 on a folder of ImageNet images (`<wnid>_<name>.JPEG` files,
or class-named subfolders).

  python -m jaxaudit.main --config=configs/imagenet_sample.py \
      --config.data.dir=../shared/data/imagenet-sample --workdir=/tmp/jaxaudit-in
"""

from jaxaudit import config_defaults


def get_config(arg: str = ""):
  del arg
  config = config_defaults.default_config()
  config.stages = "evaluate"
  config.batch_size = 32
  config.data.dir = "../shared/data/imagenet-sample"
  return config
