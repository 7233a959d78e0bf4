"""Tests of saving, keeping and restoring checkpoints, damaged ones too."""

import contextlib
import pathlib
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from examples.common import checkpoints, parallel


def make_tempdir(test: absltest.TestCase) -> pathlib.Path:
  """Returns a new directory that is deleted when `test` ends."""
  directory = tempfile.TemporaryDirectory()
  test.addCleanup(directory.cleanup)
  return pathlib.Path(directory.name)


def make_state(value: float) -> dict[str, jax.Array]:
  """A small train state whose every number depends on `value`."""
  return {
    "params": {"w": jnp.full((3, 2), value), "b": jnp.full((2,), -value)},
    "step": jnp.asarray(int(value), jnp.int32),
    "rng": jax.random.key(int(value)),
  }


def target_of(state):
  replicated = parallel.replicated(parallel.data_mesh())
  return jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
    state,
  )


def save_steps(directory, steps, max_to_keep=3):
  mngr = checkpoints.manager(directory, max_to_keep)
  for step in steps:
    checkpoints.save(mngr, step, make_state(step))
  mngr.close()


def to_numpy(tree):
  """Host copies of a tree's arrays, with keys as their raw key data."""

  def leaf(x):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    return np.asarray(x)

  return jax.tree.map(leaf, tree)


@contextlib.contextmanager
def orbax_closed_loop_errors_ignored(settle_s: float = 0.5):
  """Ignores the unraisable errors of a failed Orbax read, and only those.

  When one array of a checkpoint cannot be read, Orbax closes its event loop
  while TensorStore still finishes the other reads; their callbacks then
  raise `RuntimeError: Event loop is closed` in TensorStore's threads, after
  the restore has already failed. They are harmless, and pytest would turn
  them into an error of whichever test is running when they arrive.

  Args:
    settle_s: how long to wait for the late callbacks before leaving.

  Yields:
    Nothing.
  """
  previous = sys.unraisablehook

  def hook(unraisable):
    error = unraisable.exc_value
    if not (isinstance(error, RuntimeError) and "loop is closed" in str(error)):
      previous(unraisable)

  sys.unraisablehook = hook
  try:
    yield
    time.sleep(settle_s)
  finally:
    sys.unraisablehook = previous


def truncate_data_files(step_directory: pathlib.Path) -> None:
  """Cuts every array data file of a checkpoint in half."""
  data_files = list((step_directory / "default" / "d").iterdir())
  assert data_files, f"no data files under {step_directory}"
  for path in data_files:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garble_metadata(step_directory: pathlib.Path) -> None:
  """Overwrites the tree metadata of a checkpoint with bytes, not JSON."""
  (step_directory / "default" / "_METADATA").write_bytes(b"\x00garbage{")


class CheckpointsTest(parameterized.TestCase):
  def assert_state_equal(self, actual, expected):
    jax.tree.map(
      np.testing.assert_array_equal, to_numpy(actual), to_numpy(expected)
    )

  def test_restores_the_latest_state_exactly(self):
    directory = make_tempdir(self) / "checkpoints"
    save_steps(directory, [10, 20])

    mngr = checkpoints.manager(directory)
    step, state = checkpoints.restore_latest(mngr, target_of(make_state(0)))
    mngr.close()

    self.assertEqual(step, 20)
    self.assert_state_equal(state, make_state(20))

  def test_no_checkpoint_restores_nothing(self):
    mngr = checkpoints.manager(make_tempdir(self) / "checkpoints")

    self.assertIsNone(
      checkpoints.restore_latest(mngr, target_of(make_state(0)))
    )
    mngr.close()

  def test_keeps_only_the_latest_checkpoints(self):
    directory = make_tempdir(self) / "checkpoints"
    save_steps(directory, [1, 2, 3, 4], max_to_keep=2)

    mngr = checkpoints.manager(directory, max_to_keep=2)
    self.assertEqual(list(mngr.all_steps()), [3, 4])
    mngr.close()

  @parameterized.named_parameters(
    ("truncated_data", truncate_data_files),
    ("garbled_metadata", garble_metadata),
  )
  def test_damaged_latest_is_skipped_with_a_warning(self, damage):
    directory = make_tempdir(self) / "checkpoints"
    save_steps(directory, [10, 20])
    damage(directory / "20")

    mngr = checkpoints.manager(directory)
    with orbax_closed_loop_errors_ignored():
      with self.assertLogs("absl", "WARNING") as logs:
        step, state = checkpoints.restore_latest(mngr, target_of(make_state(0)))

    self.assertEqual(step, 10)
    self.assert_state_equal(state, make_state(10))
    self.assertIn("step 20", "\n".join(logs.output))
    self.assertEqual(list(mngr.all_steps()), [10])
    self.assertTrue((directory.parent / "checkpoints_damaged" / "20").is_dir())
    # The run can save step 20 again where the damaged one was.
    checkpoints.save(mngr, 20, make_state(21))
    mngr.close()
    mngr = checkpoints.manager(directory)
    step, state = checkpoints.restore_latest(mngr, target_of(make_state(0)))
    mngr.close()
    self.assertEqual(step, 20)
    self.assert_state_equal(state, make_state(21))

  def test_unrestorable_checkpoints_raise_and_stay_in_place(self):
    directory = make_tempdir(self) / "checkpoints"
    save_steps(directory, [10, 20])
    other_model = {"w": jax.ShapeDtypeStruct((5,), jnp.float32)}

    mngr = checkpoints.manager(directory)
    with orbax_closed_loop_errors_ignored():
      with self.assertRaisesRegex(
        ValueError, "step 20: .*step 10: .*--workdir"
      ):
        checkpoints.restore_latest(mngr, other_model)

    self.assertEqual(list(mngr.all_steps()), [10, 20])
    mngr.close()
    self.assertFalse((directory.parent / "checkpoints_damaged").exists())

  def test_failed_save_keeps_the_earlier_checkpoints(self):
    directory = make_tempdir(self) / "checkpoints"
    save_steps(directory, [1, 2], max_to_keep=2)
    broken = make_state(3)
    broken["params"]["w"].delete()

    mngr = checkpoints.manager(directory, max_to_keep=2)
    with self.assertRaisesRegex(RuntimeError, "deleted"):
      checkpoints.save(mngr, 3, broken)
      mngr.wait_until_finished()

    self.assertEqual(list(mngr.all_steps()), [1, 2])
    step, state = checkpoints.restore_latest(mngr, target_of(make_state(0)))
    self.assertEqual(step, 2)
    self.assert_state_equal(state, make_state(2))
    mngr.close()

  def test_max_to_keep_below_one_raises(self):
    with self.assertRaisesRegex(ValueError, "max_to_keep must be at least 1"):
      checkpoints.manager(make_tempdir(self) / "checkpoints", max_to_keep=0)


if __name__ == "__main__":
  absltest.main()
