"""Every estimator, the same steps, several seeds: the comparison table.

    nice -n 5 python -m examples.density.compare --workdir=/tmp/density_cmp

writes ``comparison.md``, ``comparison.json`` and ``curves.png`` under the
workdir (mean ± std over seeds; DAB's relative change against RELAX).
"""

import pathlib

from absl import app, flags, logging
from ml_collections import config_flags

from examples.common import compare
from examples.density import estimators, train

FLAGS = flags.FLAGS


def _define_flags():
  config_flags.DEFINE_config_file(
    "config",
    str(pathlib.Path(__file__).parent / "configs" / "compare.py"),
    "The shared config; override fields with --config.<field>=<value>.",
  )
  flags.DEFINE_string("workdir", None, "Directory of the comparison.")
  flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every estimator.")
  flags.DEFINE_list("estimators", list(estimators.NAMES), "Estimators.")
  flags.mark_flag_as_required("workdir")


def main(argv):
  del argv
  config = FLAGS.config
  seeds = [int(s) for s in FLAGS.seeds]
  variants = {name: {"estimator": name} for name in FLAGS.estimators}
  results = compare.run_grid(
    train.train_and_evaluate, config, variants, seeds, FLAGS.workdir
  )
  samples = config.eval_samples
  metrics = {
    "eval/elbo": "test ELBO (nats, ↑)",
    f"eval/iw{samples}": f"{samples}-sample IW bound (nats, ↑)",
    f"eval/iw{config.final_iw_samples}": (
      f"{config.final_iw_samples}-sample IW bound (nats, ↑)"
    ),
    "eval/grad_log10_var": "log10 encoder-gradient variance (↓)",
  }
  markdown, table = compare.summarize(
    results, metrics, candidate="dab", baseline="relax"
  )
  table["config"] = config.to_dict()
  table["seeds"] = seeds
  compare.write_summary(FLAGS.workdir, markdown, table)
  compare.overlay_curves(
    FLAGS.workdir,
    list(variants),
    ["train/elbo", f"eval/iw{samples}", "eval/grad_log10_var"],
    pathlib.Path(FLAGS.workdir) / "curves.png",
  )
  logging.info("Comparison:\n%s", markdown)


if __name__ == "__main__":
  _define_flags()
  app.run(main)
