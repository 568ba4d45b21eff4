"""Per-class MMD-critic prototypes and criticisms of the CIFAR-10 ResNet-20 on the
10,000 CIFAR-10 test images.

  python -m jaxaudit.main --config=configs/cifar10_criticism.py \
      --workdir=/tmp/jaxaudit-c10-criticism

`configs/cifar10_criticism.py:fast` uses the first 500 images (for tests).
"""

from jaxaudit import job_config


def get_config(arg: str = ""):
  config = job_config.cifar10_config()
  config.stages = "evaluate,criticism"
  config.criticism.group_by = "true_class"
  config.criticism.num_prototypes = 8
  config.criticism.num_criticisms = 8
  if arg == "fast":
    config.data.num_examples = 500
    config.batch_size = 100
  return config
