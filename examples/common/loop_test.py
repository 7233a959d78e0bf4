"""Tests of the training loop on the toy regression, in this process."""

import io
import json
import pathlib
import shutil
import sys
import tempfile
from unittest import mock

import jax
import numpy as np
from absl.testing import absltest

from examples.common import loop, metrics, toy
from examples.common.checkpoints_test import (
  orbax_closed_loop_errors_ignored,
  truncate_data_files,
)
from examples.common.metrics_test import PNG_SIGNATURE, tensorboard_scalars


def make_tempdir(test: absltest.TestCase) -> pathlib.Path:
  """Returns a new directory that is deleted when `test` ends."""
  directory = tempfile.TemporaryDirectory()
  test.addCleanup(directory.cleanup)
  return pathlib.Path(directory.name)


def toy_config(**overrides):
  config = toy.get_config()
  config.update(num_steps=30, log_every=10, eval_every=15, checkpoint_every=10)
  config.update(overrides)
  return config


def run_toy(config, workdir) -> loop.Result:
  return loop.run(config, workdir, **toy.make_task(config))


def params_of(result: loop.Result) -> dict[str, np.ndarray]:
  return jax.tree.map(np.asarray, result.state.params)


class LoopTest(absltest.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tempdir = tempfile.TemporaryDirectory()
    cls.workdir = pathlib.Path(cls._tempdir.name)
    cls.config = toy_config()
    cls.result = run_toy(cls.config, cls.workdir)

  @classmethod
  def tearDownClass(cls):
    cls._tempdir.cleanup()
    super().tearDownClass()

  def test_step_is_traced_once(self):
    self.assertEqual(self.result.start_step, 0)
    self.assertEqual(self.result.step_traces, 1)
    self.assertEqual(int(self.result.state.step), self.config.num_steps)

  def test_training_lowers_the_loss(self):
    history = metrics.read_jsonl(self.workdir / "metrics.jsonl")
    first_loss = history[0]["train/loss"]

    self.assertLess(self.result.metrics["train/loss"], first_loss / 2)
    self.assertLess(self.result.metrics["eval/loss"], first_loss / 2)

  def test_metrics_are_logged_every_interval(self):
    history = metrics.read_jsonl(self.workdir / "metrics.jsonl")

    train_steps = [r["step"] for r in history if "train/loss" in r]
    eval_steps = [r["step"] for r in history if "eval/loss" in r]
    self.assertEqual(train_steps, [10, 20, 30])
    self.assertEqual(eval_steps, [15, 30])
    scalars = tensorboard_scalars(self.workdir)
    self.assertEqual([s for s, _ in scalars["train/loss"]], [10, 20, 30])
    self.assertEqual([s for s, _ in scalars["eval/loss"]], [15, 30])
    np.testing.assert_allclose(
      [v for _, v in scalars["eval/loss"]],
      [r["eval/loss"] for r in history if "eval/loss" in r],
      rtol=1e-6,
    )

  def test_results_and_curves_are_written(self):
    results = json.loads((self.workdir / "results.json").read_text())

    self.assertEqual(results["metrics"], self.result.metrics)
    self.assertEqual(results["config"], self.config.to_dict())
    self.assertEqual(results["devices"]["count"], jax.device_count())
    self.assertGreater(results["wall_time_s"], 0)
    curves = (self.workdir / "learning_curves.png").read_bytes()
    self.assertEqual(curves[:8], PNG_SIGNATURE)

  def test_checkpoints_every_interval_and_at_the_end(self):
    steps = sorted(
      int(p.name) for p in (self.workdir / "checkpoints").iterdir()
    )

    self.assertEqual(steps, [10, 20, 30])

  def copy_of_run(self) -> pathlib.Path:
    workdir = make_tempdir(self) / "run"
    shutil.copytree(self.workdir, workdir)
    return workdir

  def assert_same_end(self, result):
    jax.tree.map(
      np.testing.assert_array_equal,
      params_of(result),
      params_of(self.result),
    )
    self.assertEqual(
      result.metrics["eval/loss"], self.result.metrics["eval/loss"]
    )

  def test_finished_run_restarts_without_training(self):
    again = run_toy(self.config, self.copy_of_run())

    self.assertEqual(again.start_step, self.config.num_steps)
    self.assertEqual(again.step_traces, 0)
    self.assertEqual(again.metrics, self.result.metrics)
    self.assert_same_end(again)

  def test_longer_run_resumes_and_matches_an_uninterrupted_one(self):
    workdir = make_tempdir(self)
    run_toy(toy_config(num_steps=20), workdir)

    resumed = run_toy(self.config, workdir)

    self.assertEqual(resumed.start_step, 20)
    self.assertEqual(resumed.step_traces, 1)
    self.assert_same_end(resumed)

  def test_damaged_last_checkpoint_is_redone_from_the_one_before(self):
    workdir = self.copy_of_run()
    truncate_data_files(workdir / "checkpoints" / "30")

    with orbax_closed_loop_errors_ignored():
      with self.assertLogs("absl", "WARNING") as logs:
        again = run_toy(self.config, workdir)

    self.assertIn("step 30", "\n".join(logs.output))
    self.assertEqual(again.start_step, 20)
    self.assert_same_end(again)


class HostTest(absltest.TestCase):
  def test_steps_make_no_implicit_transfer_to_the_host(self):
    config = toy_config()
    task = toy.make_task(config)
    task["eval_fn"] = None

    # Logging fetches the metrics explicitly, once per log interval.
    with jax.transfer_guard_device_to_host("disallow"):
      result = loop.run(config, make_tempdir(self), **task)

    self.assertEqual(result.step_traces, 1)

  def test_terminal_gets_a_progress_bar(self):
    terminal = io.StringIO()
    terminal.isatty = lambda: True

    with mock.patch.object(sys, "stderr", terminal):
      run_toy(toy_config(), make_tempdir(self))

    self.assertIn("30/30", terminal.getvalue())
    self.assertIn("train/loss=", terminal.getvalue())
    self.assertIn("eval at step 15: eval/loss=", terminal.getvalue())


class BadInputTest(absltest.TestCase):
  def test_config_problems_are_listed_together(self):
    config = toy_config(log_every=0)
    del config["eval_every"]

    with self.assertRaisesRegex(
      ValueError, r"log_every=0; eval_every is missing\."
    ):
      run_toy(config, make_tempdir(self))

  def test_batch_with_wrong_rows_names_the_leaf(self):
    config = toy_config()
    task = toy.make_task(config)
    make_batch = task["batch_fn"]
    task["batch_fn"] = lambda step: {**make_batch(step), "y": np.zeros((3, 1))}

    with self.assertRaisesRegex(ValueError, r"\['y'\]: shape \(3, 1\)"):
      loop.run(config, make_tempdir(self), **task)


if __name__ == "__main__":
  absltest.main()
