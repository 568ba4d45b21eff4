"""Starts an N-process jaxaudit job on this machine (what the tests use).

  python launch/local.py --num_processes=2 --devices_per_process=4 -- \
      --config=configs/cifar10_resnet20.py --workdir=/tmp/jaxaudit-2p

Each process is `python -m jaxaudit.main <args> --coordinator_address=localhost:PORT
--num_processes=N --process_id=i` with `devices_per_process` fake CPU devices, exactly
what a TPU pod or a SLURM job runs on every host. If a process fails the others are
stopped and the job exits with its status; output of process i goes to `<workdir>/logs/process-<i>.log`
(on a remote workdir such as gs://..., copied there when the job ends).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxaudit import files  # pylint: disable=wrong-import-position
from jaxaudit import storage  # pylint: disable=wrong-import-position


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def launch(job_args: list[str], num_processes: int, devices_per_process: int,
           log_dir: str) -> int:
  """Runs the processes to completion; returns the job's exit status.

  Process i writes its output to `<log_dir>/process-<i>.log`. A process's
  output needs a local file, so for a remote `log_dir` (a URL,
  `jaxaudit.storage`) the logs are written to a local temporary folder and
  copied to `log_dir` when the job ends.
  """
  port = free_port()
  local_dir = (storage.local_path(log_dir) if storage.is_local(log_dir)
               else tempfile.mkdtemp(prefix="jaxaudit-logs-"))
  os.makedirs(local_dir, exist_ok=True)
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process}")
  procs = []
  for i in range(num_processes):
    log = open(os.path.join(local_dir, f"process-{i}.log"), "w")
    cmd = [sys.executable, "-m", "jaxaudit.main", *job_args,
           f"--coordinator_address=localhost:{port}",
           f"--num_processes={num_processes}", f"--process_id={i}"]
    procs.append((subprocess.Popen(cmd, env=env, stdout=log,
                                   stderr=subprocess.STDOUT), log))
  status = 0
  running = list(procs)
  while running:
    time.sleep(0.2)
    for proc, log in list(running):
      code = proc.poll()
      if code is None:
        continue
      running.remove((proc, log))
      log.close()
      if code and not status:
        status = code
        for other, _ in running:  # The others would wait on collectives forever.
          other.kill()
  if not storage.is_local(log_dir):
    for i in range(num_processes):
      name = f"process-{i}.log"
      files.write_bytes(storage.join(log_dir, name),
                        storage.read_bytes(os.path.join(local_dir, name)))
    shutil.rmtree(local_dir)
  return status


def _workdir(job_args: list[str]) -> str:
  for arg in job_args:
    if arg.startswith("--workdir="):
      return arg.split("=", 1)[1]
  sys.exit("error: pass --workdir=DIR after --")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num_processes", type=int, default=2)
  parser.add_argument("--devices_per_process", type=int, default=4)
  parser.add_argument("job_args", nargs=argparse.REMAINDER,
                      help="-- then the arguments of jaxaudit.main")
  args = parser.parse_args()
  job_args = [a for a in args.job_args if a != "--"]
  log_dir = storage.join(_workdir(job_args), "logs")
  status = launch(job_args, args.num_processes, args.devices_per_process, log_dir)
  if status:
    print(f"error: job failed with status {status}; see {log_dir}/", file=sys.stderr)
  sys.exit(status)


if __name__ == "__main__":
  main()
