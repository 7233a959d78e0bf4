"""Question 1: training throughput and step time of each sort estimator.

For every estimator of the sort example (``dab``, ``ste``, ``none`` and the
``ptrnet`` neural sorter) at the paper's batch size: the time to lower and
to compile the training step, then the steady-state step time and the
samples per second it gives.

  python -m benchmarks.throughput --out=/tmp/throughput.jsonl
"""

from typing import Any

from absl import app

from benchmarks import common

ESTIMATORS = ("dab", "ste", "none", "ptrnet")
# The Ptr-Net's unrolled decoder takes long to compile; --quick skips it.
QUICK_ESTIMATORS = ("dab", "ste", "none")


def measure(options: common.Options) -> list[dict[str, Any]]:
  """Returns one record per estimator."""
  estimators = QUICK_ESTIMATORS if options.quick else ESTIMATORS
  return [
    sort_step_record("throughput", estimator, options.sort_batch, options)
    for estimator in estimators
  ]


def sort_step_record(
  benchmark: str, estimator: str, batch: int, options: common.Options
) -> dict[str, Any]:
  """Times the sort model's training step: compile times, step, samples/s."""
  step = common.sort_step(estimator, batch, options)
  stats = common.summarize(common.time_calls(step, options), "step_")
  return common.record(
    benchmark,
    options,
    model="sort",
    estimator=estimator,
    batch_size=batch,
    **step.compile_times,
    **stats,
    samples_per_s=batch / stats["step_median_s"],
  )


def main(argv):
  del argv
  common.script_main(measure)


if __name__ == "__main__":
  common.define_flags()
  app.run(main)
