"""Every estimator of the sort classifier, the same budget, several seeds.

    python -m examples.classification.compare --workdir=runs/classification

trains each estimator for each seed with the config of
``configs/compare.py`` (override fields with ``--config.<field>=<value>``),
then writes ``comparison.md`` and ``comparison.json`` (mean ± std over the
seeds, and DAB's relative change against straight-through in test accuracy
and test error rate) and ``comparison.png`` (test accuracy and train loss,
averaged over the seeds) under the workdir. Each run's own metrics,
TensorBoard events, checkpoints and curves are in
``<workdir>/<estimator>/<seed>``; a killed comparison resumes where it
stopped.
"""

import functools
import json
import pathlib

from absl import app, flags, logging
from ml_collections import config_flags

from examples.classification import train
from examples.common import compare
from examples.common import metrics as metrics_lib

FLAGS = flags.FLAGS
# "exact" (JAX's own derivative of the sort) is left out by default to keep
# the comparison within the budget; add it with --estimators.
ESTIMATORS = ("dab", "ste", "softsort", "none")


def _define_flags() -> None:
  """Defines this driver's flags; only when it runs as the main program."""
  config_flags.DEFINE_config_file(
    "config",
    str(pathlib.Path(__file__).parent / "configs" / "compare.py"),
    "The config every run shares.",
  )
  flags.DEFINE_string("workdir", "runs/classification", "Where to write.")
  flags.DEFINE_list("seeds", ["0", "1", "2"], "The seeds to run.")
  flags.DEFINE_list(
    "estimators", list(ESTIMATORS), "The estimators to compare."
  )


METRICS = {
  "eval/accuracy": "test accuracy (higher is better)",
  "eval/error_rate": "test error rate (lower is better)",
  "eval/loss": "test cross-entropy (lower is better)",
}
CURVES = ("eval/accuracy", "train/loss")


def run(config, workdir, estimators, seeds):
  """Runs the grid and writes the summary; returns ``(markdown, table)``.

  Args:
    config: the shared config.
    workdir: the comparison's directory.
    estimators: the estimators to run; must hold ``"dab"`` and ``"ste"``.
    seeds: the seeds to run.

  Returns:
    The markdown table and its JSON form, as `compare.summarize` returns
    them, with the wall time of each run added to the JSON form.
  """
  workdir = pathlib.Path(workdir)
  variants = {name: {"estimator": name} for name in estimators}
  # Read the images once for every run.
  data = train.load_data(config)
  results = compare.run_grid(
    functools.partial(train.train_and_evaluate, data=data),
    config,
    variants,
    seeds,
    workdir,
  )
  markdown, table = compare.summarize(
    results, METRICS, candidate="dab", baseline="ste"
  )
  table["wall_time_s"] = {
    name: [
      json.loads(
        (workdir / name / str(seed) / metrics_lib.RESULTS_NAME).read_text()
      )["wall_time_s"]
      for seed in seeds
    ]
    for name in variants
  }
  table["config"] = config.to_dict()
  compare.write_summary(workdir, markdown, table)
  compare.overlay_curves(
    workdir, list(variants), list(CURVES), workdir / "comparison.png"
  )
  return markdown, table


def main(argv):
  del argv
  config = FLAGS.config
  seeds = [int(seed) for seed in FLAGS.seeds]
  markdown, table = run(config, FLAGS.workdir, FLAGS.estimators, seeds)
  logging.info("Done.")
  print(
    f"\n{config.dataset}, {config.num_steps} steps of {config.batch_size} "
    f"images, seeds {seeds}; wall time per run (s): "
    + ", ".join(
      f"{name} {sum(times) / len(times):.0f}"
      for name, times in table["wall_time_s"].items()
    )
    + "\n"
  )
  print(markdown)
  print(f"Curves: {pathlib.Path(FLAGS.workdir) / 'comparison.png'}")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
