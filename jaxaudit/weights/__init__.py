"""Weight files in, safely: torch checkpoints, .npz and safetensors.

Weight files are untrusted input. No reader runs code from a file (torch
pickles go through an allow-list unpickler), and every tensor is checked
before its bytes are read: an allowed dtype, a view inside its storage, a
storage size equal to the bytes present, and no allocation beyond what the
file could hold (`jaxaudit.weights.bounds`). Violations raise `WeightsError`
naming the file, the tensor and the rule.
"""

from jaxaudit.errors import WeightsError
from jaxaudit.weights.restricted_pickle import UnsafeCheckpointError
from jaxaudit.weights.state_dict import load_state_dict
from jaxaudit.weights.torch_checkpoint import load_torch_checkpoint

__all__ = ["load_state_dict", "load_torch_checkpoint", "UnsafeCheckpointError",
           "WeightsError"]
