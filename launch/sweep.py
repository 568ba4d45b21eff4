"""Expands a config's declared sweep into runs and writes the sweep index.

  python launch/sweep.py --config=configs/cifar10_attack.py --workdir=/tmp/sweep
  python launch/sweep.py --config=... --workdir=... --launcher=local \
      --num_processes=2 --devices_per_process=4      # each run on 2 processes
  python launch/sweep.py --config=... --workdir=... --launcher=slurm   # sbatch each
  python launch/sweep.py --config=... --workdir=... --index_only       # re-index

Each run goes to `<workdir>/run-<i>-<overrides>/` with its resolved config saved
(`config.json`, written by the job) and the overrides (`overrides.json`). Extra
arguments after `--` are passed to every run (e.g. `--config.data.num_examples=64`).
Runs that already have a summary.json are skipped, so a sweep can be resumed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxaudit import files  # pylint: disable=wrong-import-position
from jaxaudit import storage  # pylint: disable=wrong-import-position
from jaxaudit import sweep  # pylint: disable=wrong-import-position
from launch import local  # pylint: disable=wrong-import-position


def _run_command(config: str, run_dir: str, run: dict, extra: list[str]) -> list[str]:
  return [f"--config={config}", f"--workdir={run_dir}",
          *sweep.overrides_as_flags(run), *extra]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--launcher", choices=("local", "slurm", "print"),
                      default="local")
  parser.add_argument("--num_processes", type=int, default=1)
  parser.add_argument("--devices_per_process", type=int, default=0,
                      help="fake CPU devices per process (local; 0 = real devices)")
  parser.add_argument("--index_only", action="store_true")
  parser.add_argument("extra", nargs=argparse.REMAINDER)
  args = parser.parse_args()
  extra = [a for a in args.extra if a != "--"]
  runs = sweep.load_sweep(args.config)
  config_file = args.config
  storage.makedirs(args.workdir)
  failed = []
  for i, run in enumerate(runs if not args.index_only else []):
    run_dir = storage.join(args.workdir, sweep.run_name(i, run))
    if storage.isfile(storage.join(run_dir, "summary.json")):
      continue
    files.write_json(storage.join(run_dir, "overrides.json"), run)
    job = _run_command(config_file, run_dir, run, extra)
    if args.launcher == "print":
      print("python -m jaxaudit.main " + " ".join(job))
      continue
    if args.launcher == "slurm":
      script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slurm.sbatch")
      # SLURM writes its log to a local path: a remote run's goes to sbatch's
      # default, slurm-<jobid>.out in the current folder.
      output = ([f"--output={run_dir}/slurm-%j.log"]
                if storage.is_local(run_dir) else [])
      subprocess.run(["sbatch", *output, script, *job], check=True)
      continue
    print(f"[{i + 1}/{len(runs)}] {run_dir}", flush=True)
    if args.num_processes > 1:
      status = local.launch(job, args.num_processes, args.devices_per_process or 1,
                            storage.join(run_dir, "logs"))
    else:
      env = dict(os.environ)
      if args.devices_per_process:
        env["XLA_FLAGS"] = ("--xla_force_host_platform_device_count="
                            f"{args.devices_per_process}")
      status = subprocess.run([sys.executable, "-m", "jaxaudit.main", *job],
                              env=env, check=False).returncode
    if status:
      failed.append(run_dir)
  if args.launcher in ("local",) or args.index_only:
    table = sweep.write_index(args.workdir, runs)
    print(f"sweep index: {storage.join(args.workdir, 'sweep_index.html')} "
          f"({(table['status'] == 'done').sum()}/{len(runs)} runs done)")
  if failed:
    sys.exit("error: runs failed: " + ", ".join(failed))


if __name__ == "__main__":
  main()
