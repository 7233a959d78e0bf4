"""Question 2: what the bridge really costs, in FLOPs and in time.

XLA's cost analysis of the compiled training steps gives the FLOPs of a
``dab`` step and of an ``ste`` step (and of ``none``, the model without a
hard layer). The steps are then timed in alternation, call by call, so that
all see the same load, and each measured time ratio is set beside its FLOP
ratio. Target on the CPU: ``time_ratio <= 1.1 * flop_ratio`` for ``dab``
over ``ste``, i.e. the bridge adds no overhead beyond its arithmetic.

  python -m benchmarks.overhead --out=/tmp/overhead.jsonl
"""

from typing import Any

from absl import app

from benchmarks import common

ESTIMATORS = ("dab", "ste", "none")
# (numerator, denominator) of each ratio.
PAIRS = (("dab", "ste"), ("dab", "none"), ("ste", "none"))
TARGET = 1.1


def measure(options: common.Options) -> list[dict[str, Any]]:
  """Returns one record per pair of estimators."""
  batch = options.sort_batch
  steps = {e: common.sort_step(e, batch, options) for e in ESTIMATORS}
  times = common.time_interleaved(steps, options, rounds=2 * options.repeats)

  records = []
  for num, den in PAIRS:
    a, b = steps[num], steps[den]
    ratios = common.ratio_stats(times[num], times[den], "time_")
    flop_ratio = a.flops / b.flops if a.flops and b.flops else None
    records.append(
      common.record(
        "overhead",
        options,
        model="sort",
        estimator=num,
        baseline=den,
        batch_size=batch,
        flops=a.flops,
        baseline_flops=b.flops,
        flop_ratio=flop_ratio,
        **common.summarize(times[num], "step_"),
        **common.summarize(times[den], "baseline_step_"),
        **ratios,
        time_over_flop_ratio=(
          ratios["time_ratio"] / flop_ratio if flop_ratio else None
        ),
        meets_target=(
          bool(ratios["time_ratio"] <= TARGET * flop_ratio)
          if flop_ratio and (num, den) == ("dab", "ste")
          else None
        ),
      )
    )
  return records


def main(argv):
  del argv
  common.script_main(measure)


if __name__ == "__main__":
  common.define_flags()
  app.run(main)
