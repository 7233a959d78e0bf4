"""What every benchmark shares: flags, the sort training step, timing, records.

Every benchmark script is a function ``measure(options) -> list[dict]`` and a
``main`` that runs it alone. A record is one configuration: the measured
numbers plus the device, JAX version, date, dtype and host load, written as
one JSON line.

Timing rules, the same everywhere: compilation is timed apart (``lower`` and
``compile`` separately); warm-up calls run before any timed call; every
timed call ends in `jax.block_until_ready`; a measurement is the median of
several timed calls, reported with its spread.
"""

import dataclasses
import datetime
import functools
import importlib.metadata
import json
import os
import pathlib
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from absl import flags, logging

from examples.sort import train
from examples.sort.configs import default as sort_default

FLAGS = flags.FLAGS
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
PLATFORMS = {"cpu": "cpu", "gpu": "cuda"}
# The paper's batch size for the sort model.
SORT_BATCH = 1024
QUICK_BATCH = 32


@dataclasses.dataclass(frozen=True)
class Options:
  """How a benchmark runs.

  Attributes:
    platform: ``"cpu"`` or ``"gpu"``.
    dtype: ``"float32"`` or ``"bfloat16"``: the dtype of parameters,
      optimizer state and inputs.
    quick: a seconds-long run with tiny batches and few repeats, for tests.
    out: the JSON-lines file; plots are written beside it.
  """

  platform: str = "cpu"
  dtype: str = "float32"
  quick: bool = False
  out: str = "benchmarks/results/cpu.jsonl"

  @property
  def repeats(self) -> int:
    """Timed calls per measurement."""
    return 3 if self.quick else 25

  @property
  def warmup(self) -> int:
    """Untimed calls before the timed ones."""
    return 1 if self.quick else 3

  @property
  def sort_batch(self) -> int:
    """Batch size of the sort model's headline measurements."""
    return QUICK_BATCH if self.quick else SORT_BATCH


def define_flags() -> None:
  """Defines the benchmark flags; does nothing when they exist already."""
  if "platform" in FLAGS:
    return
  flags.DEFINE_string(
    "out",
    "benchmarks/results/cpu.jsonl",
    "JSON-lines file the records are written to.",
  )
  flags.DEFINE_enum("platform", "cpu", list(PLATFORMS), "Where to run.")
  flags.DEFINE_enum(
    "dtype", "float32", list(DTYPES), "Parameter and input dtype."
  )
  flags.DEFINE_bool("quick", False, "A seconds-long run, for tests.")
  flags.DEFINE_integer(
    "worker_devices",
    0,
    "Internal to scaling.py: run as the worker for this many devices.",
  )


def options_from_flags() -> Options:
  """Returns the `Options` the command line asks for."""
  return Options(
    platform=FLAGS.platform,
    dtype=FLAGS.dtype,
    quick=FLAGS.quick,
    out=FLAGS.out,
  )


def setup_platform(options: Options) -> None:
  """Points JAX at the platform; call before any array is made.

  Raises:
    RuntimeError: if JAX cannot find the requested platform.
  """
  jax.config.update("jax_platforms", PLATFORMS[options.platform])
  backend = jax.default_backend()
  if backend != PLATFORMS[options.platform] and not (
    options.platform == "gpu" and backend == "gpu"
  ):
    raise RuntimeError(
      f"benchmarks: --platform={options.platform} needs a "
      f"{PLATFORMS[options.platform]} backend. Got {backend!r}. Install "
      "jax[cuda12] on a GPU machine, or pass --platform=cpu."
    )


# --- records ---------------------------------------------------------------


@functools.cache
def _host() -> str:
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return "unknown"


def record(benchmark: str, options: Options, **fields: Any) -> dict[str, Any]:
  """Returns one configuration's record: ``fields`` plus the context."""
  device = jax.devices()[0]
  return {
    "benchmark": benchmark,
    **fields,
    "platform": options.platform,
    "device_kind": device.device_kind,
    "device_count": jax.device_count(),
    "host_cpu": _host(),
    "host_cores": os.cpu_count(),
    "load_1min": round(os.getloadavg()[0], 2),
    "dtype": options.dtype,
    "quick": options.quick,
    "jax_version": jax.__version__,
    "jaxlib_version": importlib.metadata.version("jaxlib"),
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds"
    ),
  }


def write_records(
  path: str | pathlib.Path, records: Sequence[dict[str, Any]], mode: str = "a"
) -> None:
  """Writes ``records`` to ``path``, one JSON line each."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open(mode) as f:
    for r in records:
      f.write(json.dumps(r, sort_keys=False) + "\n")


def log_record(r: dict[str, Any]) -> None:
  """Logs the measured part of a record on one line."""
  skip = {
    "platform",
    "device_kind",
    "device_count",
    "host_cpu",
    "host_cores",
    "dtype",
    "quick",
    "jax_version",
    "jaxlib_version",
    "date",
  }
  logging.info(
    "%s", " ".join(f"{k}={_short(v)}" for k, v in r.items() if k not in skip)
  )


def _short(v: Any) -> str:
  return f"{v:.4g}" if isinstance(v, float) else str(v)


# --- timing ----------------------------------------------------------------


def time_call(fn: Callable[[], Any]) -> float:
  """Seconds of one call of ``fn``, up to `jax.block_until_ready`."""
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def time_calls(fn: Callable[[], Any], options: Options) -> list[float]:
  """Warms ``fn`` up, then times ``options.repeats`` calls of it."""
  for _ in range(options.warmup):
    jax.block_until_ready(fn())
  return [time_call(fn) for _ in range(options.repeats)]


def time_interleaved(
  fns: dict[str, Callable[[], Any]], options: Options, rounds: int
) -> dict[str, list[float]]:
  """Times the functions in turn, call by call, so all see the same load.

  Args:
    fns: named functions to time.
    options: gives the number of warm-up rounds.
    rounds: timed rounds; each calls every function once.

  Returns:
    The seconds of each timed call, by name.
  """
  for _ in range(options.warmup):
    for fn in fns.values():
      jax.block_until_ready(fn())
  # Each round starts at the next function, so that no function always
  # runs first (or right after another one) in a round.
  names = list(fns)
  times = {name: [] for name in names}
  for r in range(rounds):
    for i in range(len(names)):
      name = names[(r + i) % len(names)]
      times[name].append(time_call(fns[name]))
  return times


def ratio_stats(
  num: Sequence[float], den: Sequence[float], prefix: str
) -> dict[str, float]:
  """Ratio of medians, and the median and quartiles of per-round ratios."""
  pairs = [a / b for a, b in zip(num, den, strict=True)]
  q1, q2, q3 = (
    statistics.quantiles(pairs, n=4) if len(pairs) >= 2 else pairs * 3
  )
  return {
    f"{prefix}ratio": statistics.median(num) / statistics.median(den),
    f"{prefix}pair_ratio_median": q2,
    f"{prefix}pair_ratio_q1": q1,
    f"{prefix}pair_ratio_q3": q3,
  }


def summarize(times: Sequence[float], prefix: str = "") -> dict[str, float]:
  """Median, extremes and relative spread of timings, in seconds.

  The spread is the interquartile range over the median (0 with fewer than
  four timings, where no quartiles exist).
  """
  median = statistics.median(times)
  if len(times) >= 4:
    q1, _, q3 = statistics.quantiles(times, n=4)
    spread = (q3 - q1) / median
  else:
    spread = 0.0
  return {
    f"{prefix}median_s": median,
    f"{prefix}min_s": min(times),
    f"{prefix}max_s": max(times),
    f"{prefix}spread": spread,
    f"{prefix}repeats": len(times),
  }


def compile_timed(jitted: Any, *args: Any) -> tuple[Any, dict[str, float]]:
  """Lowers and compiles ``jitted`` for ``args``, timing each phase."""
  start = time.perf_counter()
  lowered = jitted.lower(*args)
  lowered_at = time.perf_counter()
  compiled = lowered.compile()
  done = time.perf_counter()
  return compiled, {
    "lower_s": lowered_at - start,
    "compile_s": done - lowered_at,
  }


def flops(compiled: Any) -> float | None:
  """FLOPs of one call from XLA's cost analysis, or None if not reported.

  In jax 0.10.2 ``cost_analysis()`` returns one dict; older versions return
  a list with one dict per computation. Both are handled.
  """
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  value = (analysis or {}).get("flops")
  return float(value) if value is not None else None


def memory(compiled: Any) -> dict[str, int]:
  """Bytes from the compiled executable's memory analysis.

  ``peak_bytes`` is arguments + outputs + temporaries − aliased (donated)
  bytes: everything the step holds live at once, an upper bound on its
  peak. The backend's own ``peak_memory_in_bytes`` is kept beside it as
  ``reported_peak_bytes`` when it is non-zero (on the CPU in jax 0.10.2 it
  counts only the arguments, so it is not used as the peak).
  """
  stats = compiled.memory_analysis()
  out = {
    "argument_bytes": int(stats.argument_size_in_bytes),
    "output_bytes": int(stats.output_size_in_bytes),
    "alias_bytes": int(stats.alias_size_in_bytes),
    "temp_bytes": int(stats.temp_size_in_bytes),
  }
  out["peak_bytes"] = (
    out["argument_bytes"]
    + out["output_bytes"]
    + out["temp_bytes"]
    - out["alias_bytes"]
  )
  reported = int(getattr(stats, "peak_memory_in_bytes", 0) or 0)
  if reported:
    out["reported_peak_bytes"] = reported
  return out


# --- the sort training step ------------------------------------------------


def sort_config(estimator: str, batch_size: int):
  """The sort example's paper config with ``estimator`` and ``batch_size``."""
  config = sort_default.get_config()
  config.estimator = estimator
  config.batch_size = batch_size
  return config


def cast(tree: Any, dtype: Any) -> Any:
  """Casts the floating leaves of ``tree`` to ``dtype``."""
  return jax.tree.map(
    lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x,
    tree,
  )


class SortStep:
  """The sort example's compiled training step, with state and batches.

  Built from `examples.sort.train.make_task`: the same model, loss and
  optimizer as training, jitted with the state donated as `loop.run` does.
  Each call runs one step on the next of a few pre-made device batches.

  Attributes:
    estimator: ``"dab"``, ``"ste"``, ``"none"`` or ``"ptrnet"``.
    batch_size: rows per step.
    compiled: the compiled step.
    compile_times: ``lower_s`` and ``compile_s``.
    flops: FLOPs per step from XLA's cost analysis.
    memory: bytes from the memory analysis (see `memory`).
  """

  def __init__(
    self,
    estimator: str,
    batch_size: int,
    dtype: Any = jnp.float32,
    in_shardings: Any = None,
    num_batches: int = 4,
  ):
    self.estimator = estimator
    self.batch_size = batch_size
    task = train.make_task(sort_config(estimator, batch_size))
    self.state = cast(jax.jit(task["init_fn"])(jax.random.key(0)), dtype)
    self.batches = [
      cast(task["batch_fn"](step), dtype) for step in range(num_batches)
    ]
    if in_shardings is None:
      self.batches = [jax.device_put(b) for b in self.batches]
      jitted = jax.jit(task["train_step"], donate_argnums=0)
    else:
      state_sharding, batch_sharding = in_shardings
      self.state = jax.device_put(self.state, state_sharding)
      self.batches = [jax.device_put(b, batch_sharding) for b in self.batches]
      jitted = jax.jit(
        task["train_step"],
        in_shardings=in_shardings,
        out_shardings=state_sharding,
        donate_argnums=0,
      )
    self.compiled, self.compile_times = compile_timed(
      jitted, self.state, self.batches[0]
    )
    self.flops = flops(self.compiled)
    self.memory = memory(self.compiled)
    self._count = 0

  def __call__(self) -> tuple[Any, Any]:
    batch = self.batches[self._count % len(self.batches)]
    self._count += 1
    self.state, metrics = self.compiled(self.state, batch)
    return self.state, metrics


_STEPS: dict[tuple[str, int, str], SortStep] = {}


def sort_step(estimator: str, batch_size: int, options: Options) -> SortStep:
  """A cached `SortStep`: each configuration compiles once per process."""
  key = (estimator, batch_size, options.dtype)
  if key not in _STEPS:
    _STEPS[key] = SortStep(estimator, batch_size, DTYPES[options.dtype])
  return _STEPS[key]


def script_main(measure: Callable[[Options], list[dict[str, Any]]]) -> None:
  """Runs one benchmark alone and appends its records to ``--out``."""
  options = options_from_flags()
  setup_platform(options)
  records = measure(options)
  for r in records:
    log_record(r)
  write_records(options.out, records)
  logging.info("Wrote %d records to %s", len(records), options.out)
