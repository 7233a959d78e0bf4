"""Every estimator on the same budget and seeds, for each code type.

    python -m examples.representation.compare --workdir=runs/representation \\
      --codes=binary --seeds=0,1,2

For each code, writes under ``<workdir>/<code>/`` a ``comparison.md`` and
``comparison.json`` (mean ± std over seeds, and DAB's relative change
against relaxed Gumbel-Softmax on every metric) and ``comparison.png``
(the training NLL curves); each run's metrics, TensorBoard events, checkpoints,
learning curves and reconstructions are in ``<workdir>/<code>/<estimator>/
<seed>``. ``<workdir>/comparison.md`` gathers the tables of all codes.
"""

import json
import pathlib

from absl import app, flags, logging

from examples.common import compare
from examples.common import metrics as metrics_lib
from examples.representation import model, train
from examples.representation.configs import compare as compare_config

_WORKDIR = flags.DEFINE_string(
  "workdir", "runs/representation", "Where to write."
)
_CODES = flags.DEFINE_list("codes", ["binary"], "Codes to compare.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds to run.")
_STEPS = flags.DEFINE_integer("steps", None, "Override the budget's steps.")

METRICS = {
  "eval/nll": "test NLL, nats/image (lower is better)",
  "eval/probe_accuracy": "linear probe accuracy (higher is better)",
}
USAGE_METRICS = {
  "eval/perplexity": "code perplexity",
  "eval/usage": "code usage",
}


def main(argv):
  del argv
  config = compare_config.get_config()
  if _STEPS.value is not None:
    config.num_steps = _STEPS.value
    config.eval_every = config.checkpoint_every = _STEPS.value
  seeds = [int(seed) for seed in _SEEDS.value]
  root = pathlib.Path(_WORKDIR.value)
  sections = []
  for code in _CODES.value:
    if code not in model.CODES:
      raise app.UsageError(
        f"compare: --codes must be among {model.CODES}. Got {code!r}. Fix "
        "the list."
      )
    workdir = root / code
    variants = {
      name: {"code": code, "estimator": name} for name in model.ESTIMATORS
    }
    results = compare.run_grid(
      train.train_and_evaluate, config, variants, seeds, workdir
    )
    metrics = METRICS | (USAGE_METRICS if code != "binary" else {})
    markdown, table = compare.summarize(
      results, metrics, candidate="dab", baseline="gumbel"
    )
    seconds = {
      name: [
        json.loads(
          (workdir / name / str(seed) / metrics_lib.RESULTS_NAME).read_text()
        )["wall_time_s"]
        for seed in seeds
      ]
      for name in variants
    }
    table["wall_time_s"] = seconds
    table["budget"] = {
      "num_steps": config.num_steps,
      "batch_size": config.batch_size,
      "seeds": seeds,
    }
    compare.write_summary(workdir, markdown, table)
    compare.overlay_curves(
      workdir, list(variants), ["train/nll"], workdir / "comparison.png"
    )
    sections.append(
      f"## {code} code\n\n{config.num_steps} steps of {config.batch_size} "
      f"images, seeds {seeds}.\n\n{markdown}"
    )
    logging.info("%s code done:\n%s", code, markdown)
  (root / "comparison.md").write_text("\n".join(sections))
  print("\n".join(sections))


if __name__ == "__main__":
  app.run(main)
