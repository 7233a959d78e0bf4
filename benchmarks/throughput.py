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
  records = []
  batch = options.sort_batch
  for estimator in QUICK_ESTIMATORS if options.quick else ESTIMATORS:
    step = common.sort_step(estimator, batch, options)
    stats = common.summarize(common.time_calls(step, options), "step_")
    records.append(
      common.record(
        "throughput",
        options,
        model="sort",
        estimator=estimator,
        batch_size=batch,
        **step.compile_times,
        **stats,
        samples_per_s=batch / stats["step_median_s"],
      )
    )
  return records


def main(argv):
  del argv
  common.script_main(measure)


if __name__ == "__main__":
  common.define_flags()
  app.run(main)
