"""Tests of the metrics files, the results file and the learning curves."""

import json
import pathlib
import tempfile

import matplotlib.image
from absl.testing import absltest
from tensorboard.backend.event_processing import event_accumulator

from examples.common import metrics, plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_tempdir(test: absltest.TestCase) -> pathlib.Path:
  """Returns a new directory that is deleted when `test` ends."""
  directory = tempfile.TemporaryDirectory()
  test.addCleanup(directory.cleanup)
  return pathlib.Path(directory.name)


def tensorboard_scalars(workdir: pathlib.Path) -> dict[str, list[tuple]]:
  """Reads every scalar under `workdir/tensorboard` as `tag -> [(step, v)]`."""
  accumulator = event_accumulator.EventAccumulator(
    str(workdir / metrics.TENSORBOARD_DIR)
  )
  accumulator.Reload()
  return {
    tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
    for tag in accumulator.Tags()["scalars"]
  }


class WriterTest(absltest.TestCase):
  def test_scalars_reach_jsonl_and_tensorboard(self):
    workdir = make_tempdir(self)
    writer = metrics.Writer(workdir)
    writer.write(10, {"train/loss": 0.5, "train/accuracy": 0.25})
    writer.write(20, {"train/loss": 0.125, "train/accuracy": 0.75})
    writer.write(20, {"eval/loss": 0.375})
    writer.close()

    expected = [
      {"step": 10, "train/loss": 0.5, "train/accuracy": 0.25},
      {"step": 20, "train/loss": 0.125, "train/accuracy": 0.75},
      {"step": 20, "eval/loss": 0.375},
    ]
    self.assertEqual(metrics.read_jsonl(workdir / "metrics.jsonl"), expected)
    self.assertEqual(writer.history, expected)
    self.assertEqual(
      tensorboard_scalars(workdir),
      {
        "train/loss": [(10, 0.5), (20, 0.125)],
        "train/accuracy": [(10, 0.25), (20, 0.75)],
        "eval/loss": [(20, 0.375)],
      },
    )

  def test_resume_drops_what_the_killed_run_wrote_after_its_checkpoint(self):
    workdir = make_tempdir(self)
    killed = metrics.Writer(workdir)
    for step in (10, 20, 30):
      killed.write(step, {"train/loss": float(step)})
      killed.write(step, {"eval/loss": float(-step)})
    killed.close()

    resumed = metrics.Writer(workdir, start_step=20)
    resumed.write(20, {"eval/loss": -2.0})
    resumed.write(30, {"train/loss": 3.0})
    resumed.close()

    expected = [
      {"step": 10, "train/loss": 10.0},
      {"step": 10, "eval/loss": -10.0},
      {"step": 20, "train/loss": 20.0},
      {"step": 20, "eval/loss": -2.0},
      {"step": 30, "train/loss": 3.0},
    ]
    self.assertEqual(metrics.read_jsonl(workdir / "metrics.jsonl"), expected)
    self.assertEqual(
      tensorboard_scalars(workdir),
      {
        "train/loss": [(10, 10.0), (20, 20.0), (30, 3.0)],
        "eval/loss": [(10, -10.0), (20, -2.0)],
      },
    )

  def test_truncated_last_line_is_skipped_with_a_warning(self):
    path = make_tempdir(self) / "metrics.jsonl"
    path.write_text('{"step": 1, "train/loss": 1.0}\n{"step": 2, "tra')

    with self.assertLogs("absl", "WARNING") as logs:
      records = metrics.read_jsonl(path)

    self.assertEqual(records, [{"step": 1, "train/loss": 1.0}])
    self.assertIn("line 2", logs.output[0])

  def test_disabled_writer_keeps_history_and_touches_no_file(self):
    workdir = make_tempdir(self)
    writer = metrics.Writer(workdir, enabled=False)
    writer.write(5, {"train/loss": 2.0})
    writer.close()

    self.assertEqual(writer.history, [{"step": 5, "train/loss": 2.0}])
    self.assertEqual(list(workdir.iterdir()), [])


class ResultsTest(absltest.TestCase):
  def test_final_metrics_takes_the_last_value_of_each_metric(self):
    history = [
      {"step": 1, "train/loss": 3.0},
      {"step": 1, "eval/loss": 4.0},
      {"step": 2, "train/loss": 1.0},
    ]

    self.assertEqual(
      metrics.final_metrics(history), {"train/loss": 1.0, "eval/loss": 4.0}
    )

  def test_results_json_holds_metrics_config_versions_and_devices(self):
    workdir = make_tempdir(self)
    metrics.write_results(
      workdir,
      metrics={"eval/loss": 0.5},
      config={"num_steps": 3, "shape": (2, 3)},
      wall_time_s=1.5,
    )

    results = json.loads((workdir / "results.json").read_text())
    self.assertEqual(results["metrics"], {"eval/loss": 0.5})
    self.assertEqual(results["config"], {"num_steps": 3, "shape": [2, 3]})
    self.assertCountEqual(
      results["versions"], ["python", "jax", "jaxlib", "flax", "optax"]
    )
    self.assertTrue(all(results["versions"].values()))
    self.assertCountEqual(results["devices"], ["kind", "count", "processes"])
    self.assertGreaterEqual(results["devices"]["count"], 1)
    self.assertEqual(results["wall_time_s"], 1.5)


class PlotsTest(absltest.TestCase):
  def test_learning_curves_draw_one_panel_per_metric_as_a_png(self):
    path = make_tempdir(self) / "curves.png"
    history = [
      {"step": 10, "train/loss": 1.0, "train/accuracy": 0.5},
      {"step": 10, "eval/loss": 1.5},
      {"step": 20, "train/loss": 0.5, "train/accuracy": 0.75},
      {"step": 20, "eval/loss": 1.0, "eval/accuracy": 0.5},
    ]

    panels = plots.learning_curves(history, path)

    self.assertEqual(panels, ["loss", "accuracy"])
    self.assertEqual(path.read_bytes()[:8], PNG_SIGNATURE)
    height, width, _ = matplotlib.image.imread(path).shape
    self.assertEqual((width, height), (800, 300))

  def test_history_without_metrics_raises(self):
    path = make_tempdir(self) / "curves.png"

    with self.assertRaisesRegex(ValueError, "at least one metric"):
      plots.learning_curves([{"step": 1}], path)


if __name__ == "__main__":
  absltest.main()
