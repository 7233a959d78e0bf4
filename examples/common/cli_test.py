"""Tests that run the toy through its command line in fresh processes.

Each run sets its own device count, so these tests hold whatever devices the
test session itself has: one device against four, a run killed with SIGKILL
and started again, and two processes joined by `jax.distributed`.
"""

import json
import pathlib
import signal
import tempfile
import time

import numpy as np
from absl.testing import absltest

from examples.common import metrics, processes, toy

TIMEOUT_S = processes.TIMEOUT_S
# Every run trains the same toy for the same number of steps.
RUN_FLAGS = (
  "--config.num_steps=60",
  "--config.log_every=10",
  "--config.eval_every=30",
  "--config.checkpoint_every=20",
)


def start_toy(workdir, devices, *flags):
  """Starts the toy's command line on `devices` CPU devices."""
  return processes.start(
    "examples.common.toy",
    workdir,
    devices,
    "--config=examples/common/toy.py",
    *flags,
  )


def final_params(workdir) -> dict[str, np.ndarray]:
  with np.load(pathlib.Path(workdir) / toy.PARAMS_NAME) as params:
    return dict(params)


def results(workdir) -> dict:
  return json.loads((pathlib.Path(workdir) / "results.json").read_text())


class CommandLineTest(absltest.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tempdir = tempfile.TemporaryDirectory()
    cls.root = pathlib.Path(cls._tempdir.name)
    one = start_toy(cls.root / "one_device", 1, *RUN_FLAGS)
    four = start_toy(cls.root / "four_devices", 4, *RUN_FLAGS)
    processes.finish(one)
    processes.finish(four)

  @classmethod
  def tearDownClass(cls):
    cls._tempdir.cleanup()
    super().tearDownClass()

  def assert_params_close(self, actual, expected):
    # Data parallelism sums the batch in another order: last-bit differences.
    self.assertEqual(actual.keys(), expected.keys())
    for name in expected:
      np.testing.assert_allclose(
        actual[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name
      )

  def test_flags_override_the_config(self):
    for name, devices in (("one_device", 1), ("four_devices", 4)):
      written = results(self.root / name)
      self.assertEqual(written["config"]["num_steps"], 60)
      self.assertEqual(written["devices"]["count"], devices)

  def test_four_devices_match_one_device(self):
    self.assert_params_close(
      final_params(self.root / "four_devices"),
      final_params(self.root / "one_device"),
    )

  def test_run_killed_and_restarted_matches_uninterrupted_run(self):
    workdir = self.root / "killed"
    checkpoints = workdir / "checkpoints"
    killed = start_toy(workdir, 4, *RUN_FLAGS, "--config.batch_delay_s=0.05")
    deadline = time.monotonic() + TIMEOUT_S
    while not any(p.name.isdigit() for p in _children(checkpoints)):
      self.assertIsNone(killed.poll(), "the run ended before a checkpoint")
      self.assertLess(time.monotonic(), deadline, "no checkpoint in time")
      time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    processes.finish(killed, returncode=-signal.SIGKILL)
    self.assertFalse((workdir / "results.json").exists())

    output = processes.finish(start_toy(workdir, 4, *RUN_FLAGS))

    self.assertRegex(output, r"Restored checkpoint of step [1-9]")
    expected = final_params(self.root / "four_devices")
    actual = final_params(workdir)
    for name in expected:
      np.testing.assert_array_equal(actual[name], expected[name], name)
    history = metrics.read_jsonl(workdir / "metrics.jsonl")
    train_steps = [r["step"] for r in history if "train/loss" in r]
    eval_steps = [r["step"] for r in history if "eval/loss" in r]
    self.assertEqual(train_steps, [10, 20, 30, 40, 50, 60])
    self.assertEqual(eval_steps, [30, 60])
    self.assertEqual(
      results(workdir)["metrics"]["eval/loss"],
      results(self.root / "four_devices")["metrics"]["eval/loss"],
    )

  def test_two_processes_match_one_process(self):
    workdir = self.root / "two_processes"
    address = f"--coordinator_address=localhost:{processes.free_port()}"
    runs = [
      start_toy(
        workdir,
        2,
        *RUN_FLAGS,
        address,
        "--num_processes=2",
        f"--process_id={index}",
      )
      for index in range(2)
    ]
    for process in runs:
      processes.finish(process)

    written = results(workdir)
    self.assertEqual(written["devices"]["count"], 4)
    self.assertEqual(written["devices"]["processes"], 2)
    self.assert_params_close(
      final_params(workdir), final_params(self.root / "four_devices")
    )

  def test_process_flags_without_coordinator_are_a_usage_error(self):
    output = processes.finish(
      start_toy(self.root / "usage", 1, "--num_processes=2"), returncode=1
    )

    self.assertIn("need --coordinator_address", output)


def _children(directory: pathlib.Path) -> list[pathlib.Path]:
  return list(directory.iterdir()) if directory.is_dir() else []


if __name__ == "__main__":
  absltest.main()
