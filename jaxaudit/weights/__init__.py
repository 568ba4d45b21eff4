"""Weight files in: torch checkpoints (safely), .npz and safetensors."""

from jaxaudit.weights.state_dict import load_state_dict
from jaxaudit.weights.torch_checkpoint import load_torch_checkpoint
from jaxaudit.weights.torch_checkpoint import UnsafeCheckpointError

__all__ = ["load_state_dict", "load_torch_checkpoint", "UnsafeCheckpointError"]
