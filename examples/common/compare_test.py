"""The comparison driver: grid runs, mean ± std tables, overlaid curves."""

import json
import pathlib
import tempfile

import ml_collections
import numpy as np
from absl.testing import absltest

from examples.common import compare

RESULTS = {
  "dab": [{"eval/acc": 0.6}, {"eval/acc": 0.8}],
  "ste": [{"eval/acc": 0.5}, {"eval/acc": 0.5}],
}


class CompareTest(absltest.TestCase):
  def test_run_grid_applies_overrides_and_seeds(self):
    seen = []

    def train_and_evaluate(config, workdir):
      seen.append((config.estimator, config.seed, config.lr, workdir.name))
      return {"eval/acc": float(config.seed)}

    config = ml_collections.ConfigDict({"estimator": "x", "seed": 0, "lr": 1})
    with tempfile.TemporaryDirectory() as workdir:
      results = compare.run_grid(
        train_and_evaluate, config, {"a": {"estimator": "a"}}, [3, 4], workdir
      )
    self.assertEqual(seen, [("a", 3, 1, "3"), ("a", 4, 1, "4")])
    self.assertEqual(results, {"a": [{"eval/acc": 3.0}, {"eval/acc": 4.0}]})
    self.assertEqual(config.estimator, "x")

  def test_summary_values(self):
    markdown, table = compare.summarize(
      RESULTS, {"eval/acc": "accuracy"}, candidate="dab", baseline="ste"
    )
    row = table["variants"]["dab"]["eval/acc"]
    self.assertAlmostEqual(row["mean"], 0.7)
    self.assertAlmostEqual(row["std"], np.std([0.6, 0.8], ddof=1))
    self.assertAlmostEqual(table["relative_change"]["eval/acc"], 0.4)
    self.assertIn("| dab | 2 | 0.7 ± 0.14 |", markdown)
    self.assertIn("accuracy: +40.0%", markdown)

  def test_unknown_variant_is_named(self):
    with self.assertRaisesRegex(KeyError, r"'relax' is not among"):
      compare.summarize(
        RESULTS, {"eval/acc": "a"}, candidate="dab", baseline="relax"
      )

  def test_summary_files_and_curves(self):
    with tempfile.TemporaryDirectory() as name:
      workdir = pathlib.Path(name)
      for variant in ("dab", "ste"):
        run_dir = workdir / variant / "0"
        run_dir.mkdir(parents=True)
        lines = [{"step": s, "eval/acc": s / 10} for s in (1, 2, 3)]
        (run_dir / "metrics.jsonl").write_text(
          "".join(json.dumps(line) + "\n" for line in lines)
        )
      markdown, table = compare.summarize(
        RESULTS, {"eval/acc": "a"}, candidate="dab", baseline="ste"
      )
      compare.write_summary(workdir, markdown, table)
      compare.overlay_curves(
        workdir, ["dab", "ste"], ["eval/acc"], workdir / "c.png"
      )
      self.assertEqual((workdir / "comparison.md").read_text(), markdown)
      self.assertEqual(
        json.loads((workdir / "comparison.json").read_text()), table
      )
      self.assertEqual((workdir / "c.png").read_bytes()[:4], b"\x89PNG")


if __name__ == "__main__":
  absltest.main()
