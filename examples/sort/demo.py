"""``make demo``: the demo config with DAB and with straight-through, side by
side.

    python -m examples.sort.demo --workdir=runs/demo

Prints a table of their test accuracies and writes ``comparison.md``,
``comparison.json`` and ``comparison.png`` under the workdir; each run's own
metrics, TensorBoard events, checkpoints and curves are in
``<workdir>/<estimator>/0``.
"""

import json
import pathlib

from absl import app, flags, logging

from examples.common import cli, compare
from examples.common import metrics as metrics_lib
from examples.sort import train
from examples.sort.configs import demo

_WORKDIR = flags.DEFINE_string("workdir", "runs/demo", "Where to write.")
_STEPS = flags.DEFINE_integer("steps", None, "Override the demo's steps.")

VARIANTS = {"dab": {"estimator": "dab"}, "ste": {"estimator": "ste"}}
METRICS = {
  "eval/all_or_none": "all-or-none accuracy (higher is better)",
  "eval/per_position": "per-position accuracy",
  "eval/task_loss": "test cross-entropy (lower is better)",
}


def main(argv):
  del argv
  cli.quiet_orbax()
  config = demo.get_config()
  if _STEPS.value is not None:
    config.num_steps = _STEPS.value
  workdir = pathlib.Path(_WORKDIR.value)
  results = compare.run_grid(
    train.train_and_evaluate, config, VARIANTS, [config.seed], workdir
  )
  markdown, table = compare.summarize(
    results, METRICS, candidate="dab", baseline="ste"
  )
  compare.write_summary(workdir, markdown, table)
  compare.overlay_curves(
    workdir, list(VARIANTS), list(METRICS)[:2], workdir / "comparison.png"
  )
  seconds = {
    name: json.loads(
      (workdir / name / "0" / metrics_lib.RESULTS_NAME).read_text()
    )["wall_time_s"]
    for name in VARIANTS
  }
  logging.info("Done.")
  print(
    f"\n10-sort, {config.num_steps} steps of {config.batch_size} sequences "
    f"each (wall time of the last invocation: "
    + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    + ")\n"
  )
  print(markdown)
  print(f"Curves: {workdir / 'comparison.png'}")
  print(f"Per-run curves: {workdir}/<estimator>/0/learning_curves.png")


if __name__ == "__main__":
  app.run(main)
