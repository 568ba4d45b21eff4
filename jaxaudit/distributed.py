"""Multi-process start-up: `jax.distributed` on pods, clusters and local CPUs."""

from __future__ import annotations

import os

from absl import logging
import jax

# Variables by which TPU VMs and SLURM announce a multi-host job.
_CLUSTER_VARS = ("SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS")


def initialize(coordinator_address: str = "", num_processes: int = 0,
               process_id: int = -1, multihost: bool = False) -> None:
  """Joins a multi-process job if one is described; a no-op otherwise.

  Args:
    coordinator_address: "host:port" of process 0 ("" = from the environment).
    num_processes: processes in the job (0 = from the environment).
    process_id: this process's index (-1 = from the environment).
    multihost: join even without flags or cluster variables (TPU VM pods,
      whose topology `jax.distributed.initialize()` reads from metadata).
  """
  explicit = bool(coordinator_address) or num_processes > 1 or multihost
  in_cluster = any(v in os.environ for v in _CLUSTER_VARS) and (
      int(os.environ.get("SLURM_NTASKS", "2")) > 1)
  if not explicit and not in_cluster:
    return
  # CPU collectives across processes need gloo; GPU and TPU backends ignore it.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  kwargs = {}
  if coordinator_address:
    kwargs["coordinator_address"] = coordinator_address
  if num_processes:
    kwargs["num_processes"] = num_processes
  if process_id >= 0:
    kwargs["process_id"] = process_id
  jax.distributed.initialize(**kwargs)
  logging.info("process %d of %d", jax.process_index(), jax.process_count())
