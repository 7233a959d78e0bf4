"""Question 6: device memory of a training step, ``dab`` against ``ste``.

The bytes come from the compiled executable's memory analysis (no step is
run): arguments, outputs, donated (aliased) bytes and temporaries, and the
peak they imply (see `benchmarks.common.memory`). Each ``dab`` record
carries its ratio over the ``ste`` step of the same batch size.

  python -m benchmarks.memory --out=/tmp/memory.jsonl
"""

from typing import Any

from absl import app

from benchmarks import common

ESTIMATORS = ("dab", "ste", "none")
LARGE_BATCH = 8192


def measure(options: common.Options) -> list[dict[str, Any]]:
  """Returns one record per estimator and batch size."""
  batches = [options.sort_batch]
  if not options.quick:
    batches.append(LARGE_BATCH)
  records = []
  for batch in batches:
    steps = {e: common.sort_step(e, batch, options) for e in ESTIMATORS}
    ste = steps["ste"].memory
    for estimator, step in steps.items():
      mem = step.memory
      records.append(
        common.record(
          "memory",
          options,
          model="sort",
          estimator=estimator,
          batch_size=batch,
          **mem,
          peak_over_ste=mem["peak_bytes"] / ste["peak_bytes"],
          temp_over_ste=(
            mem["temp_bytes"] / ste["temp_bytes"] if ste["temp_bytes"] else None
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
