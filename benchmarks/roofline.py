"""Question 3: how close the training step comes to the machine's peak.

The peak is measured in the same run: a large square matrix multiply in the
benchmark dtype, timed before and after the training steps (the faster of
the two counts, so the fraction is never flattered by a slow peak). The
achieved rate of a training step is its FLOPs from XLA's cost analysis over
its median time. Target for the sort step on the CPU: at least 60% of the
peak.

  python -m benchmarks.roofline --out=/tmp/roofline.jsonl
"""

from typing import Any

import jax
import jax.numpy as jnp
from absl import app

from benchmarks import common

ESTIMATORS = ("dab", "ste", "none")
TARGET = 0.6
# A larger batch than the paper's, to show how the fraction grows with it.
LARGE_BATCH = 8192


def matmul_size(options: common.Options) -> int:
  """Side of the square matrices of the peak measurement."""
  if options.quick:
    return 256
  return 8192 if options.platform == "gpu" else 2048


def matmul_peak(options: common.Options) -> dict[str, Any]:
  """Times ``a @ b`` for square matrices; returns the FLOP/s it reaches."""
  n = matmul_size(options)
  dtype = common.DTYPES[options.dtype]
  ka, kb = jax.random.split(jax.random.key(1))
  a = jax.random.normal(ka, (n, n), dtype)
  b = jax.random.normal(kb, (n, n), dtype)
  compiled, compile_times = common.compile_timed(jax.jit(jnp.matmul), a, b)
  stats = common.summarize(
    common.time_calls(lambda: compiled(a, b), options), "step_"
  )
  flops = 2.0 * n**3
  return {
    "size": n,
    "flops": flops,
    "cost_analysis_flops": common.flops(compiled),
    **compile_times,
    **stats,
    "flops_per_s": flops / stats["step_median_s"],
  }


def measure(options: common.Options) -> list[dict[str, Any]]:
  """Returns the matmul peak record and one record per training step."""
  before = matmul_peak(options)
  batches = [options.sort_batch]
  if not options.quick:
    batches.append(LARGE_BATCH)
  steps = []
  for batch in batches:
    for estimator in ESTIMATORS:
      step = common.sort_step(estimator, batch, options)
      stats = common.summarize(common.time_calls(step, options), "step_")
      steps.append((estimator, batch, step.flops, stats))
  after = matmul_peak(options)
  peak = max(before["flops_per_s"], after["flops_per_s"])

  records = [
    common.record(
      "roofline",
      options,
      model="matmul",
      **after,
      before_flops_per_s=before["flops_per_s"],
      peak_flops_per_s=peak,
    )
  ]
  for estimator, batch, flops, stats in steps:
    achieved = flops / stats["step_median_s"]
    records.append(
      common.record(
        "roofline",
        options,
        model="sort",
        estimator=estimator,
        batch_size=batch,
        flops=flops,
        **stats,
        flops_per_s=achieved,
        peak_flops_per_s=peak,
        fraction_of_peak=achieved / peak,
        meets_target=bool(achieved / peak >= TARGET),
      )
    )
  return records


def main(argv):
  del argv
  common.script_main(measure)


if __name__ == "__main__":
  common.define_flags()
  app.run(main)
