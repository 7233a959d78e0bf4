"""Question 5: samples per second over devices, and over the batch size.

Devices: for 1, 2, 4 and 8 devices, a worker process runs the sort ``dab``
and ``ste`` training steps under sharded `jit` over a one-axis ``'data'``
mesh (`examples.common.parallel`): the global batch of the paper is split
over the devices and the state is replicated. On the CPU the devices are
forced host devices (``--xla_force_host_platform_device_count``) that share
the same cores, so these numbers show correctness (the first step's loss
must match one device's) and the overhead of partitioning, not speed-up. On
a GPU machine, the counts up to the number of GPUs give real scaling.

Batch size: on one device, the step time and samples per second of
``dab``, ``ste`` and ``none`` over batch sizes, drawn as a PNG beside the
output file.

  python -m benchmarks.scaling --out=/tmp/scaling.jsonl
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
from typing import Any

import jax
from absl import app, flags, logging
from matplotlib.backends import backend_agg
from matplotlib.figure import Figure

from benchmarks import common, throughput
from examples.common import parallel

REPO = pathlib.Path(__file__).resolve().parents[1]
FORCE_FLAG = "--xla_force_host_platform_device_count"
LOSS_RTOL = 1e-4


def device_counts(options: common.Options) -> tuple[int, ...]:
  return (2,) if options.quick else (1, 2, 4, 8)


def device_estimators(options: common.Options) -> tuple[str, ...]:
  return ("dab",) if options.quick else ("dab", "ste")


def batch_sizes(options: common.Options) -> tuple[int, ...]:
  return (common.QUICK_BATCH,) if options.quick else (256, 1024, 4096, 16384)


def sweep_estimators(options: common.Options) -> tuple[str, ...]:
  return ("dab",) if options.quick else ("dab", "ste", "none")


# --- devices ---------------------------------------------------------------


def worker(options: common.Options, devices: int) -> list[dict[str, Any]]:
  """Runs in the worker process: times the sharded steps on ``devices``."""
  mesh = parallel.data_mesh(jax.devices()[:devices])
  shardings = (parallel.replicated(mesh), parallel.batch_sharding(mesh))
  batch = options.sort_batch
  records = []
  for estimator in device_estimators(options):
    step = common.SortStep(
      estimator, batch, common.DTYPES[options.dtype], in_shardings=shardings
    )
    # The first step from the shared initial state: its loss is the
    # correctness check against one device.
    _, metrics = step()
    first_loss = float(metrics["task_loss"])
    stats = common.summarize(common.time_calls(step, options), "step_")
    records.append(
      common.record(
        "scaling_devices",
        options,
        model="sort",
        estimator=estimator,
        batch_size=batch,
        devices=devices,
        forced_host_devices=options.platform == "cpu",
        first_step_loss=first_loss,
        **step.compile_times,
        **stats,
        samples_per_s=batch / stats["step_median_s"],
      )
    )
  return records


def _worker_env(options: common.Options, devices: int) -> dict[str, str]:
  env = dict(os.environ)
  kept = [f for f in env.get("XLA_FLAGS", "").split() if FORCE_FLAG not in f]
  if options.platform == "cpu":
    kept.append(f"{FORCE_FLAG}={devices}")
  env["XLA_FLAGS"] = " ".join(kept)
  env["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
  )
  return env


def run_worker(options: common.Options, devices: int) -> list[dict[str, Any]]:
  """Starts a worker process for ``devices`` devices; returns its records.

  Raises:
    RuntimeError: if the worker fails.
  """
  with tempfile.TemporaryDirectory() as tmp:
    out = pathlib.Path(tmp) / "worker.jsonl"
    command = [
      sys.executable,
      "-m",
      "benchmarks.scaling",
      f"--worker_devices={devices}",
      f"--out={out}",
      f"--platform={options.platform}",
      f"--dtype={options.dtype}",
      f"--quick={options.quick}",
    ]
    done = subprocess.run(
      command,
      cwd=REPO,
      env=_worker_env(options, devices),
      capture_output=True,
      text=True,
      check=False,
    )
    if done.returncode != 0:
      raise RuntimeError(
        f"benchmarks.scaling: the worker for {devices} devices failed with "
        f"exit code {done.returncode}. Its log ends:\n{done.stderr[-3000:]}"
      )
    return [json.loads(line) for line in out.read_text().splitlines()]


def measure_devices(options: common.Options) -> list[dict[str, Any]]:
  """One record per device count and estimator, checked against 1 device."""
  available = jax.device_count()
  records = []
  for devices in device_counts(options):
    if options.platform == "gpu" and devices > available:
      logging.warning(
        "Skipping %d devices: only %d GPUs are visible.", devices, available
      )
      continue
    records += run_worker(options, devices)

  single = {r["estimator"]: r for r in records if r["devices"] == 1}
  for r in records:
    base = single.get(r["estimator"])
    if base is None:
      continue
    diff = abs(r["first_step_loss"] - base["first_step_loss"])
    r["loss_diff_vs_1_device"] = diff
    r["loss_matches_1_device"] = bool(
      diff <= LOSS_RTOL * abs(base["first_step_loss"])
    )
    r["samples_per_s_vs_1_device"] = r["samples_per_s"] / base["samples_per_s"]
  return records


# --- batch size ------------------------------------------------------------


def measure_batch_sizes(options: common.Options) -> list[dict[str, Any]]:
  """One record per batch size and estimator, on one device."""
  return [
    throughput.sort_step_record("scaling_batch", estimator, batch, options)
    for estimator in sweep_estimators(options)
    for batch in batch_sizes(options)
  ]


def plot_batch_sweep(
  records: list[dict[str, Any]], path: str | pathlib.Path
) -> None:
  """Draws samples per second against batch size, one line per estimator."""
  figure = Figure(figsize=(6, 4))
  backend_agg.FigureCanvasAgg(figure)
  ax = figure.add_subplot()
  for estimator in dict.fromkeys(r["estimator"] for r in records):
    mine = [r for r in records if r["estimator"] == estimator]
    ax.plot(
      [r["batch_size"] for r in mine],
      [r["samples_per_s"] for r in mine],
      marker="o",
      label=estimator,
    )
  first = records[0]
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  ax.set_xlabel("batch size")
  ax.set_ylabel("training samples / s")
  ax.set_title(
    f"sort training step, {first['device_kind']}, {first['dtype']}, "
    f"jax {first['jax_version']}",
    fontsize=9,
  )
  ax.grid(True, which="both", alpha=0.3)
  ax.legend()
  figure.tight_layout()
  figure.savefig(path, dpi=120)


def plot_path(options: common.Options) -> pathlib.Path:
  """The PNG beside ``options.out``: ``<stem>_batch_sweep.png``."""
  out = pathlib.Path(options.out)
  return out.with_name(f"{out.stem}_batch_sweep.png")


def measure(options: common.Options) -> list[dict[str, Any]]:
  """Returns the device records, then the batch-size records."""
  records = measure_devices(options)
  sweep = measure_batch_sizes(options)
  path = plot_path(options)
  path.parent.mkdir(parents=True, exist_ok=True)
  plot_batch_sweep(sweep, path)
  logging.info("Wrote %s", path)
  return records + sweep


def main(argv):
  del argv
  if flags.FLAGS.worker_devices:
    options = common.options_from_flags()
    common.setup_platform(options)
    common.write_records(
      options.out, worker(options, flags.FLAGS.worker_devices)
    )
  else:
    common.script_main(measure)


if __name__ == "__main__":
  common.define_flags()
  app.run(main)
