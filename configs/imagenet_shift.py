"""EfficientNet-Lite0 under the 19 common corruptions at 5 severities on the
1,000 ImageNet-sample images (imagecorruptions' parameters at 224 pixels).

  python -m jaxaudit.main --config=configs/imagenet_shift.py \
      --config.data.dir=../shared/data/imagenet-sample \
      --workdir=/tmp/jaxaudit-in-shift

The mistakes stage runs first so that the same judgement (ReaL-style label
sets where the data has them, superclasses, WordNet) rectifies the clean and
the shifted errors alike. `configs/imagenet_shift.py:fast` corrupts the first
8 images (tests). mCE and relative mCE compare with AlexNet on the whole
validation set; the sample holds one image per class and is easier.
"""

from jaxaudit import job_config


def get_config(arg: str = ""):
  config = job_config.base_config()
  config.data.dir = "../shared/data/imagenet-sample"
  config.batch_size = 32
  config.stages = "evaluate,mistakes,shift"
  config.shift.corruptions = "all"
  config.shift.parameter_set = "imagenet"
  if arg == "fast":
    config.data.num_examples = 8
    config.batch_size = 8
  return config
