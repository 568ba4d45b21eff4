"""Input pipeline: decoding speed, evaluate against the bare forward pass, and
start-up time and memory of multi-process jobs on TFDS datasets of two sizes.

The streamed data layer (issue #25) promises an evaluate stage within 90% of
the model's own speed and host memory and start-up that do not grow with the
dataset; this measures all three in one run.

  python -m benchmarks.input                              # the README numbers
  python -m benchmarks.input --sizes=500,2000 --sample_examples=264   # a check

Three parts (`--parts`), one JSON file (`--out`) and printed tables:

- `decode`: images/s of jaxaudit's own decoding of the 1,000-image ImageNet
  sample (`../shared/data/imagenet-sample`, skipped where absent) into
  EfficientNet-Lite0's input (short side 256, centre crop 224), on one thread
  and on every core, through `decode.decode_image` and through
  `ImageColumn.batches` of a `FolderSource`, with CPU-seconds per image.
- `evaluate`: the evaluate stage's img/s, EfficientNet-Lite0 on the same
  sample through `python -m jaxaudit.main` (all cores and one decode thread),
  against the model alone (the jitted `logits_and_features` on already decoded
  uint8 batches of the same size). Compilation is removed by difference: each
  setting runs the job twice in fresh workdirs, on the whole sample and on a
  smaller prefix shorter by a whole number of batches, and img/s is the extra
  images over the extra seconds. Everything that does not grow with the data
  (interpreter start, imports, model conversion, compilation of the same
  padded batch shape, the report's fixed-size gallery) cancels and no log
  format is relied on; what remains is the per-image cost of the whole job.
  Where the ratio falls short, the CPU-seconds per image of decoding and of the
  forward pass bound it: C idle cores do at most C / (decode + forward)
  images a second when both share them (on a loaded machine the bound is
  meaningless, hence the load average in the output).
- `tfds`: `scripts/tfds_builder.prepare_synthetic` datasets (224-pixel JPEGs,
  1,000 classes, ArrayRecord), built once through TensorFlow's environment
  (`--tf_python`) and kept under `--cache_dir`, each evaluated on
  `launch/local.py` processes with a near-free model
  (`benchmarks/pooled_linear.py`). Per process: start-up time, from the
  process's start (the kernel's, `/proc/<pid>/stat`) to its log line
  `stage evaluate` (absl's timestamp), written just before the stage reads its
  first batch, so it holds everything that could grow with the data (opening
  the dataset, reading the process's labels and names); the stage's seconds,
  from that line to the process's exit (compilation, the stage, records and
  report, for the stage's img/s); and peak RSS, the kernel's high-water mark
  `VmHWM` polled every 20 ms from `/proc/<pid>/status` until the process
  exits, checked against the largest child's `ru_maxrss` that a wrapper around
  the launcher reads after it (the launcher reaps its children itself, so the
  benchmark cannot ask the kernel for each one's). Start-up and peak RSS should
  not grow with the dataset; resident decoded images would cost
  N x 224 x 224 x 3 bytes over the processes (3.76 GB each at 50,000 on 2).
"""

from __future__ import annotations

from concurrent import futures
import datetime
import importlib.metadata
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import numpy as np

from jaxaudit import compile_options
from jaxaudit import job_config
from jaxaudit.data.decode import decode_image
from jaxaudit.data.images import ImageColumn
from jaxaudit.data.pixels import unit_images
from jaxaudit.data.sources import FolderSource
from jaxaudit.models import load_model
from jaxaudit.models.classifier import Classifier, Params, Preprocessing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PARTS = flags.DEFINE_list("parts", ["decode", "evaluate", "tfds"],
                           "Which parts to run.")
_SAMPLE = flags.DEFINE_string(
    "sample_dir", "../shared/data/imagenet-sample",
    "The ImageNet sample (relative to the repository).")
_SAMPLE_EXAMPLES = flags.DEFINE_integer(
    "sample_examples", 0, "Use the first N sample images (0 = all).")
_BATCH = flags.DEFINE_integer("batch_size", 32, "Global batch size of every "
                              "job and of the bare forward pass.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Passes over the images when "
                                "timing the bare forward pass.")
_SIZES = flags.DEFINE_list("sizes", ["5000", "50000"],
                           "TFDS dataset sizes (examples).")
_CACHE = flags.DEFINE_string(
    "cache_dir", os.path.expanduser("~/.cache/jaxaudit/benchmarks/input"),
    "Where built TFDS datasets are kept (a rerun reuses them).")
_TF_PYTHON = flags.DEFINE_string(
    "tf_python", "/work/tfvenv/bin/python",
    "Python with TensorFlow and tensorflow-datasets, to build the datasets "
    "(see scripts/tfds_builder.py).")
_PROCESSES = flags.DEFINE_integer("num_processes", 2, "Processes of TFDS jobs.")
_DEVICES = flags.DEFINE_integer("devices_per_process", 4,
                                "Fake CPU devices per process of TFDS jobs.")
_OUT = flags.DEFINE_string("out", os.path.join(ROOT, "benchmarks", "results",
                                               "input.json"), "JSON output.")

TFDS_NAME = "jaxaudit_synthetic"
MODEL = os.path.join(ROOT, "benchmarks", "pooled_linear.py") + ":make"
IMAGE_BYTES = 224 * 224 * 3
POLL_SECONDS = 0.02
# Run in the TensorFlow environment; prints the versions that built the data.
_BUILD = ("import json, sys; import tensorflow as tf, tensorflow_datasets as "
          "tfds; from scripts import tfds_builder; "
          "tfds_builder.prepare_synthetic(sys.argv[1], int(sys.argv[2])); "
          "print(json.dumps({'tensorflow': tf.__version__, "
          "'tensorflow_datasets': tfds.__version__}))")
# Runs the launcher and prints the largest descendant's peak RSS (kB).
_WRAPPER = ("import resource, subprocess, sys; code = subprocess.call("
            "sys.argv[1:]); print('max_child_rss_kb', resource.getrusage("
            "resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")
_LOG_LINE = re.compile(r"^I(\d{4}) (\d\d:\d\d:\d\d\.\d+) +\d+ \S+\] "
                       r"(?:process \d+/\d+: (\d+) local examples|stage \w+)")


def machine() -> dict:
  """CPU model, cores, RAM, load and versions of this machine."""
  with open("/proc/cpuinfo") as f:
    cpu = next((line.split(":", 1)[1].strip() for line in f
                if line.startswith("model name")), platform.processor())
  with open("/proc/meminfo") as f:
    ram_kb = int(next(line.split()[1] for line in f
                      if line.startswith("MemTotal")))
  versions = {"python": platform.python_version()}
  for name in ("jax", "jaxlib", "flax", "numpy", "pillow", "grain",
               "tensorflow-datasets", "array-record"):
    versions[name] = importlib.metadata.version(name)
  return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": ram_kb / 2**20,
          "load_average_1min_at_start": os.getloadavg()[0],
          "platform": platform.platform(), "jax_backend": jax.default_backend(),
          "versions": versions}


def _cpu_seconds(usage: resource.struct_rusage) -> float:
  return usage.ru_utime + usage.ru_stime


def decode_throughput(source: FolderSource, count: int, prep: Preprocessing,
                      cores: int) -> dict:
  """img/s and CPU-s per image of decoding a folder's first `count` images
  (warm page cache).

  Returns:
    {"<path>_<threads>t": {"ips", "cpu_s_per_image"}} for `decode_image` in
    a thread pool and for `ImageColumn.batches`, on 1 and `cores` threads,
    plus "per_core_ips" (all cores' `ImageColumn` img/s over the cores).
  """
  paths = [os.path.join(source.root, f) for f in source.files[:count]]
  for path in paths:  # The page cache, so disks do not count.
    with open(path, "rb") as f:
      f.read()

  def by_function(threads: int) -> int:
    with futures.ThreadPoolExecutor(threads) as pool:
      return sum(1 for _ in pool.map(lambda p: decode_image(p, prep), paths))

  def by_column(threads: int) -> int:
    column = ImageColumn(source, np.arange(count), prep, threads)
    return sum(len(batch) for batch in column.batches(_BATCH.value))

  out = {}
  for name, fn in (("decode_image", by_function), ("image_column", by_column)):
    for threads in sorted({1, cores}):
      wall, cpu = time.perf_counter(), time.process_time()
      decoded = fn(threads)
      wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
      out[f"{name}_{threads}t"] = {"ips": decoded / wall,
                                   "cpu_s_per_image": cpu / decoded}
  out["per_core_ips"] = out[f"image_column_{cores}t"]["ips"] / cores
  return out


def forward_throughput(model: Classifier, params: Params,
                       images: np.ndarray) -> dict:
  """img/s and CPU-s per image of the jitted `logits_and_features` alone.

  Args:
    model: the classifier.
    params: its params.
    images: uint8 [n, S, S, 3] already decoded, n a multiple of the batch.
  """
  batch = _BATCH.value
  forward = compile_options.jit(
      lambda p, x: model.logits_and_features(p, unit_images(x)))
  batches = [images[i:i + batch] for i in range(0, len(images), batch)]
  jax.block_until_ready(forward(params, batches[0]))  # Compiles.
  wall, cpu = time.perf_counter(), time.process_time()
  for _ in range(_REPEATS.value):
    jax.block_until_ready([forward(params, b) for b in batches])
  wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
  count = _REPEATS.value * len(images)
  return {"ips": count / wall, "cpu_s_per_image": cpu / count,
          "batch": batch, "images": len(images)}


def _timed_job(args: list[str]) -> tuple[float, float]:
  """(wall s, CPU s) of `python -m jaxaudit.main ARGS` in a fresh workdir."""
  with tempfile.TemporaryDirectory(prefix="jaxaudit-input-") as workdir:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "jaxaudit.main", *args, f"--workdir={workdir}"],
        cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
  if done.returncode:
    raise RuntimeError(f"job {args} failed:\n{done.stderr[-3000:]}")
  return wall, _cpu_seconds(after) - _cpu_seconds(before)


def evaluate_throughput(sample_dir: str, n: int, threads: int) -> dict:
  """The evaluate stage's per-image img/s and CPU-s, by difference of two jobs.

  Args:
    sample_dir: the image folder.
    n: images of the larger job (the first n); the smaller one has n minus a
      whole number of batches (about n / 5), so both pad their last batch alike.
    threads: `config.data.decode_threads` (0 = one per core).
  """
  batch = _BATCH.value
  small = n - batch * ((4 * n // 5) // batch)
  runs = {}
  for size in (small, n):
    runs[size] = _timed_job([
        "--config=configs/imagenet_sample.py",
        f"--config.data.dir={sample_dir}",
        f"--config.data.num_examples={size}", f"--config.batch_size={batch}",
        f"--config.data.decode_threads={threads}"])
  extra_s = runs[n][0] - runs[small][0]
  return {"decode_threads": threads or os.cpu_count(),
          "sizes": [small, n], "wall_s": [runs[small][0], runs[n][0]],
          "ips": (n - small) / extra_s,
          "cpu_s_per_image": (runs[n][1] - runs[small][1]) / (n - small),
          "whole_job_ips": n / runs[n][0]}


def build_tfds(cache_dir: str, num_examples: int) -> dict:
  """The synthetic TFDS dataset of `num_examples`, built once.

  TFDS renames its temporary folder to the version folder only once writing
  succeeded, so a version folder with `dataset_info.json` is complete;
  `build.json` beside it keeps the build's time and versions for reruns.

  Returns:
    {"data_dir", "bytes", "cached", "build_s", and the builder's versions}.
  """
  data_dir = os.path.join(cache_dir, f"synthetic_{num_examples}")
  version = os.path.join(data_dir, TFDS_NAME, "1.0.0")
  record = os.path.join(data_dir, "build.json")
  cached = os.path.isfile(os.path.join(version, "dataset_info.json"))
  if cached:
    with open(record) as f:
      built = json.load(f)
  else:
    print(f"building {num_examples} examples into {data_dir} ...", flush=True)
    start = time.perf_counter()
    done = subprocess.run([_TF_PYTHON.value, "-c", _BUILD, data_dir,
                           str(num_examples)], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    if done.returncode:
      raise RuntimeError(f"building {data_dir} failed:\n{done.stderr[-3000:]}")
    built = json.loads(done.stdout.strip().splitlines()[-1])
    built["build_s"] = time.perf_counter() - start
    with open(record, "w") as f:
      json.dump(built, f)
  size = sum(os.path.getsize(os.path.join(d, f))
             for d, _, names in os.walk(version) for f in names)
  return {"data_dir": data_dir, "bytes": size, "cached": cached, **built}


def _start_time(pid: int) -> float:
  """Epoch seconds at which process `pid` started (10 ms resolution)."""
  with open(f"/proc/{pid}/stat") as f:
    ticks = int(f.read().rsplit(")", 1)[1].split()[19])
  since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
  return time.time() - since_boot + ticks / os.sysconf("SC_CLK_TCK")


def _job_processes(workdir: str) -> dict[int, int]:
  """{pid: process index} of the running jaxaudit processes of `workdir`."""
  found = {}
  for entry in os.listdir("/proc"):
    if not entry.isdigit():
      continue
    try:
      with open(f"/proc/{entry}/cmdline", "rb") as f:
        args = f.read().decode(errors="replace").split("\0")
    except OSError:
      continue
    if "jaxaudit.main" in args and f"--workdir={workdir}" in args:
      index = [a for a in args if a.startswith("--process_id=")]
      found[int(entry)] = int(index[0].split("=")[1]) if index else 0
  return found


def _peak_rss_kb(pid: int) -> int | None:
  """The kernel's peak RSS of a live process, None once it has exited."""
  try:
    with open(f"/proc/{pid}/status") as f:
      return next((int(line.split()[1]) for line in f
                   if line.startswith("VmHWM:")), None)
  except OSError:
    return None


def _log_times(path: str, year: int) -> tuple[float, int]:
  """(epoch of the first "stage" line, N of "N local examples") in a log."""
  stage, local = None, None
  with open(path) as f:
    for line in f:
      match = _LOG_LINE.match(line)
      if match and match.group(3):
        local = int(match.group(3))
      elif match and stage is None:
        stage = datetime.datetime.strptime(
            f"{year}{match.group(1)} {match.group(2)}",
            "%Y%m%d %H:%M:%S.%f").timestamp()
  if stage is None or local is None:
    raise RuntimeError(f"{path}: no 'local examples' and 'stage' log lines")
  return stage, local


def tfds_job(data_dir: str, num_examples: int) -> dict:
  """Evaluates a TFDS dataset on local processes, watching each process.

  Returns:
    The job's wall time and kernel peak, and per process: local examples,
    start-up and stage seconds and peak RSS.
  """
  workdir = tempfile.mkdtemp(prefix="jaxaudit-input-tfds-")
  command = [
      sys.executable, "-c", _WRAPPER, sys.executable, "launch/local.py",
      f"--num_processes={_PROCESSES.value}",
      f"--devices_per_process={_DEVICES.value}", "--",
      "--config=configs/default.py:fast", f"--config.model.name={MODEL}",
      f"--config.data.tfds_name={TFDS_NAME}",
      f"--config.data.tfds_data_dir={data_dir}",
      f"--config.batch_size={_BATCH.value}", f"--workdir={workdir}"]
  peaks, ends, starts, index = {}, {}, {}, {}
  start = time.perf_counter()
  with tempfile.TemporaryFile("w+") as output:
    job = subprocess.Popen(command, cwd=ROOT, stdout=output,
                           stderr=subprocess.STDOUT, text=True)
    while job.poll() is None:
      if len(index) < _PROCESSES.value:
        for pid, i in _job_processes(workdir).items():
          if pid not in index:
            index[pid], starts[pid] = i, _start_time(pid)
      for pid in index:
        peak = _peak_rss_kb(pid)
        if peak is not None:
          peaks[pid], ends[pid] = peak, time.time()
      time.sleep(POLL_SECONDS)
    wall = time.perf_counter() - start
    output.seek(0)
    text = output.read()
  if job.returncode or len(peaks) != _PROCESSES.value:
    raise RuntimeError(f"TFDS job in {workdir} failed:\n{text[-3000:]}")
  kernel_peak = int(re.findall(r"max_child_rss_kb (\d+)", text)[-1])
  processes = []
  for pid, i in sorted(index.items(), key=lambda item: item[1]):
    year = datetime.datetime.fromtimestamp(starts[pid]).year
    stage, local = _log_times(
        os.path.join(workdir, "logs", f"process-{i}.log"), year)
    processes.append({
        "process": i, "local_examples": local, "startup_s": stage - starts[pid],
        "stage_s": ends[pid] - stage, "peak_rss_mb": peaks[pid] / 1024})
  shutil.rmtree(workdir)
  return {"examples": num_examples, "wall_s": wall,
          "kernel_max_rss_mb": kernel_peak / 1024,
          "resident_images_gb_per_process":
              num_examples * IMAGE_BYTES / _PROCESSES.value / 1e9,
          "processes": processes}


def _sample_part(results: dict) -> None:
  """The decode and evaluate parts on the ImageNet sample, into `results`."""
  sample_dir = os.path.normpath(os.path.join(ROOT, _SAMPLE.value))
  parts = [p for p in ("decode", "evaluate") if p in _PARTS.value]
  if not os.path.isdir(sample_dir):
    reason = (f"needs {_SAMPLE.value} (the shared data beside the checkout; "
              "absent in a user's clone)")
    print(f"{', '.join(parts)}: skipped, {reason}")
    results.update({p: {"skipped": reason} for p in parts})
    return
  source = FolderSource(sample_dir, None)
  files = source.files[:_SAMPLE_EXAMPLES.value or len(source)]
  model_config = job_config.base_config().model
  model_config.name = "efficientnet_lite0"
  model, params = load_model(model_config)
  prep = model.preprocessing
  cores = os.cpu_count()
  sizes = {"images": len(files), "image_size": prep.image_size,
           "resize_size": prep.resize_size,
           "mean_file_kb": np.mean([os.path.getsize(
               os.path.join(sample_dir, f)) for f in files]) / 1024}
  decode = dict(decode_throughput(source, len(files), prep, cores), **sizes)
  if "decode" in parts:
    results["decode"] = decode
  if "evaluate" not in parts:
    return
  count = len(files) // _BATCH.value * _BATCH.value
  images = np.stack([decode_image(os.path.join(sample_dir, f), prep)
                     for f in files[:min(count, 8 * _BATCH.value)]])
  forward = forward_throughput(model, params, images)
  jobs = [evaluate_throughput(sample_dir, len(files), threads)
          for threads in (0, 1)]
  cpu = (decode["decode_image_1t"]["cpu_s_per_image"]
         + forward["cpu_s_per_image"])
  results["evaluate"] = {
      "model": "efficientnet_lite0", "forward": forward, "jobs": jobs,
      "ratios": [job["ips"] / forward["ips"] for job in jobs],
      "cpu_bound_ips": cores / cpu,
      "cpu_bound_ratio": cores / cpu / forward["ips"]}


def _tfds_part(results: dict) -> None:
  """Builds (or reuses) each size's dataset and runs the job on it."""
  runs = []
  for size in sorted(int(s) for s in _SIZES.value):
    build = build_tfds(_CACHE.value, size)
    runs.append(dict(tfds_job(build["data_dir"], size), build=build))
  peak = [max(p["peak_rss_mb"] for p in run["processes"]) for run in runs]
  startup = [max(p["startup_s"] for p in run["processes"]) for run in runs]
  results["tfds"] = {
      "model": MODEL, "processes": _PROCESSES.value,
      "devices_per_process": _DEVICES.value, "batch_size": _BATCH.value,
      "runs": runs, "rss_growth": peak[-1] / peak[0],
      "startup_growth": startup[-1] / startup[0],
      "rss_goal_met": peak[-1] <= 1.2 * peak[0]}


def _print_tables(results: dict) -> None:
  """The results as markdown tables."""
  m = results["machine"]
  print(f"\nmachine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']:.0f} GiB, "
        f"load {m['load_average_1min_at_start']:.2f} at start, jax "
        f"{m['versions']['jax']} ({m['jax_backend']})")
  decode = results.get("decode", {})
  if "skipped" not in decode and decode:
    print(f"\ndecode, {decode['images']} sample images -> "
          f"{decode['image_size']} px (resize {decode['resize_size']}):\n"
          "| path | threads | img/s | CPU ms/img |\n|---|---|---|---|")
    for key, value in decode.items():
      if isinstance(value, dict):
        name, threads = key.rsplit("_", 1)
        print(f"| {name} | {threads[:-1]} | {value['ips']:.1f} | "
              f"{1e3 * value['cpu_s_per_image']:.2f} |")
    print(f"per core (all cores, image_column): {decode['per_core_ips']:.1f} "
          "img/s")
  evaluate = results.get("evaluate", {})
  if "skipped" not in evaluate and evaluate:
    forward = evaluate["forward"]
    print(f"\nevaluate, EfficientNet-Lite0, batch {forward['batch']}: forward "
          f"alone {forward['ips']:.1f} img/s "
          f"({1e3 * forward['cpu_s_per_image']:.1f} CPU ms/img)\n"
          "| decode threads | evaluate img/s | / forward | CPU ms/img | "
          "whole job img/s |\n|---|---|---|---|---|")
    for job, ratio in zip(evaluate["jobs"], evaluate["ratios"]):
      print(f"| {job['decode_threads']} | {job['ips']:.1f} | {ratio:.0%} | "
            f"{1e3 * job['cpu_s_per_image']:.1f} | "
            f"{job['whole_job_ips']:.1f} |")
    print(f"CPU bound (decode + forward CPU-s per image on {m['cores']} idle "
          f"cores): {evaluate['cpu_bound_ips']:.1f} img/s = "
          f"{evaluate['cpu_bound_ratio']:.0%} of forward")
  tfds = results.get("tfds")
  if tfds:
    print(f"\nTFDS evaluate, {tfds['processes']} processes x "
          f"{tfds['devices_per_process']} devices, pooled_linear:\n"
          "| examples | build s | GB on disk | process | start-up s | stage s "
          "(img/s) | peak RSS MB | resident images GB |\n"
          "|---|---|---|---|---|---|---|---|")
    for run in tfds["runs"]:
      for p in run["processes"]:
        print(f"| {run['examples']} | {run['build']['build_s']:.0f} | "
              f"{run['build']['bytes'] / 1e9:.2f} | {p['process']} | "
              f"{p['startup_s']:.1f} | {p['stage_s']:.1f} "
              f"({p['local_examples'] / p['stage_s']:.0f}) | "
              f"{p['peak_rss_mb']:.0f} | "
              f"{run['resident_images_gb_per_process']:.2f} |")
    print("largest process peak, polled / kernel's ru_maxrss: " + ", ".join(
        f"{max(p['peak_rss_mb'] for p in run['processes']):.0f} / "
        f"{run['kernel_max_rss_mb']:.0f} MB" for run in tfds["runs"]))
    print(f"peak RSS largest/smallest: {tfds['rss_growth']:.2f}x (goal <= "
          f"1.2x: {'met' if tfds['rss_goal_met'] else 'not met'}); start-up: "
          f"{tfds['startup_growth']:.2f}x")


def main(argv):
  del argv
  results = {"machine": machine(), "flags": {
      "parts": _PARTS.value, "sample_examples": _SAMPLE_EXAMPLES.value,
      "batch_size": _BATCH.value, "sizes": _SIZES.value}}
  if {"decode", "evaluate"} & set(_PARTS.value):
    _sample_part(results)
  if "tfds" in _PARTS.value:
    _tfds_part(results)
  _print_tables(results)
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value, "w") as f:
    json.dump(results, f, indent=1, sort_keys=True)
  print(f"\nwrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
