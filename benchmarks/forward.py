"""Forward-pass throughput: jitted Flax vs the same weights in plain PyTorch.

  python -m benchmarks.forward [--models=efficientnet_lite0,cifar_resnet20]

Same batch, same machine, one run; prints a markdown table with images/s, the
JAX/PyTorch ratio, and the achieved FLOP/s (XLA's cost analysis of the compiled
forward) against the machine's measured float32 matmul peak.
"""

from __future__ import annotations

import os
import platform

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import torch

from benchmarks import timing
from benchmarks import torch_models
from jaxaudit import compile_options
from jaxaudit.models import load_model
from jaxaudit.models import efficientnet_lite
from jaxaudit.weights import load_state_dict

_MODELS = flags.DEFINE_list("models", ["efficientnet_lite0", "cifar_resnet20"],
                            "Models to time.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repetitions (median).")
_CIFAR = flags.DEFINE_string("cifar_checkpoint", "../shared/data/cifar10/resnet20.th",
                             "ResNet-20 weights (random weights if absent).")

BATCH = {"efficientnet_lite0": 32, "cifar_resnet20": 256}


def matmul_peak(repeats: int) -> float:
  """Best float32 matmul FLOP/s of XLA and PyTorch on a 2048^3 product."""
  n = 2048
  a = jnp.ones((n, n), jnp.float32)
  dot = jax.jit(jnp.dot)
  jax_time = timing.median_time(lambda: dot(a, a).block_until_ready(), repeats)
  t = torch.ones(n, n)
  torch_time = timing.median_time(lambda: torch.mm(t, t), repeats)
  return 2 * n**3 / min(jax_time, torch_time)


def _torch_twin(name: str):
  if name == "efficientnet_lite0":
    return torch_models.load_numpy_state(
        torch_models.EfficientNetLite0(),
        load_state_dict(efficientnet_lite.default_checkpoint())), None
  if os.path.isfile(_CIFAR.value):
    return torch_models.CifarResNet(20).load_numpy_state(
        load_state_dict(_CIFAR.value)), _CIFAR.value
  return torch_models.CifarResNet(20).eval(), None


def bench(name: str, repeats: int, peak: float) -> dict:
  reference, checkpoint = _torch_twin(name)
  config = {"name": name, "checkpoint": checkpoint or ""}
  if name != "efficientnet_lite0" and not checkpoint:
    config["random_init_seed"] = 0
  model, params = load_model(ml_collections.ConfigDict(config))
  size = model.preprocessing.image_size
  batch = BATCH[name]
  x = np.random.RandomState(0).rand(batch, size, size, 3).astype(np.float32)
  forward = compile_options.jit(model.logits)
  xj = jnp.asarray(x)
  flops = forward.lower(params, xj).compile().cost_analysis()
  flops = (flops[0] if isinstance(flops, list) else flops).get("flops", 0.0)
  jax_time = timing.median_time(lambda: forward(params, xj).block_until_ready(), repeats)
  xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  with torch.inference_mode():
    torch_time = timing.median_time(lambda: reference(xt), repeats)
  return {"model": name, "batch": batch,
          "jax_ips": batch / jax_time, "torch_ips": batch / torch_time,
          "ratio": torch_time / jax_time,
          "gflops": flops / jax_time / 1e9, "peak_share": flops / jax_time / peak}


def main(argv):
  del argv
  peak = matmul_peak(_REPEATS.value)
  print(f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, jax {jax.__version__} "
        f"({jax.devices()[0].platform}), torch {torch.__version__}, "
        f"torch threads {torch.get_num_threads()}")
  print(f"measured float32 matmul peak: {peak / 1e9:.1f} GFLOP/s\n")
  print("| model | batch | JAX img/s | PyTorch img/s | JAX / PyTorch | "
        "JAX GFLOP/s | share of matmul peak |")
  print("|---|---|---|---|---|---|---|")
  for name in _MODELS.value:
    r = bench(name, _REPEATS.value, peak)
    print(f"| {r['model']} | {r['batch']} | {r['jax_ips']:.1f} | "
          f"{r['torch_ips']:.1f} | {r['ratio']:.2f}x | {r['gflops']:.1f} | "
          f"{r['peak_share']:.0%} |")


if __name__ == "__main__":
  app.run(main)
