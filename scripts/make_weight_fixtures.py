"""Writes the small torch checkpoints the weight-loader tests start from.

  python scripts/make_weight_fixtures.py   # needs torch (the crosscheck extra)

`tests/weights/data/small_{zip,legacy}.pt` hold the same checkpoint in torch's
two formats: a conv/batch-norm/linear state dict (with `_metadata`), a
non-contiguous view, bfloat16, bool, int64 and 0-d tensors, and an optimizer
state with integer keys. The fuzz tests mutate them; the loader tests compare
them with what torch wrote.
"""

import os

import torch


def checkpoint() -> dict:
  torch.manual_seed(0)
  model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.Flatten(), torch.nn.Linear(4, 2))
  state = model.state_dict()
  state["view"] = torch.randn(6, 5)[1:, ::2]
  state["half"] = torch.randn(3).bfloat16()
  state["mask"] = torch.tensor([True, False, True])
  state["scalar"] = torch.tensor(3.5)
  optimizer = {"state": {0: {"momentum_buffer": torch.zeros(4)}},
               "param_groups": [{"lr": 0.1, "params": [0, 1]}]}
  return {"state_dict": state, "epoch": 3, "optimizer": optimizer}


def main() -> None:
  folder = os.path.join(os.path.dirname(__file__), "..", "tests", "weights",
                        "data")
  os.makedirs(folder, exist_ok=True)
  value = checkpoint()
  torch.save(value, os.path.join(folder, "small_zip.pt"))
  torch.save(value, os.path.join(folder, "small_legacy.pt"),
             _use_new_zipfile_serialization=False)


if __name__ == "__main__":
  main()
