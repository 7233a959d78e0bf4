"""Tests of the data mesh and of splitting batches over it."""

import jax
import numpy as np
from absl.testing import absltest

from examples.common import parallel


class ParallelTest(absltest.TestCase):
  def setUp(self):
    super().setUp()
    self.mesh = parallel.data_mesh()
    self.devices = self.mesh.size

  def test_mesh_has_every_device_on_the_data_axis(self):
    self.assertEqual(self.mesh.axis_names, ("data",))
    self.assertEqual(list(self.mesh.devices), jax.devices())

  def test_one_process_builds_every_row(self):
    self.assertEqual(
      parallel.local_rows(3 * self.devices, self.mesh),
      slice(0, 3 * self.devices),
    )

  def test_batch_that_does_not_split_over_the_devices_raises(self):
    if self.devices < 2:
      self.skipTest("needs two devices or more; conftest.py forces four")
    batch_size = 2 * self.devices + 1

    with self.assertRaisesRegex(
      ValueError,
      f"batch_size={batch_size} for {self.devices} devices. Set "
      f"config.batch_size to a positive multiple of {self.devices}",
    ):
      parallel.local_rows(batch_size, self.mesh)

  def test_empty_batch_raises(self):
    with self.assertRaisesRegex(ValueError, "batch_size=0"):
      parallel.local_rows(0, self.mesh)

  def test_batch_rows_are_split_in_order_over_the_devices(self):
    batch_size = 2 * self.devices
    batch = {
      "x": np.arange(batch_size * 3, dtype=np.float32).reshape(-1, 3),
      "y": np.arange(batch_size, dtype=np.int32),
    }

    sharded = parallel.shard_batch(batch, self.mesh, batch_size)

    for name, array in sharded.items():
      self.assertEqual(array.sharding, parallel.batch_sharding(self.mesh))
      np.testing.assert_array_equal(np.asarray(array), batch[name])
      for shard in array.addressable_shards:
        position = list(self.mesh.devices).index(shard.device)
        np.testing.assert_array_equal(
          np.asarray(shard.data), batch[name][2 * position : 2 * position + 2]
        )

  def test_every_leaf_with_wrong_rows_is_listed(self):
    batch_size = 2 * self.devices
    batch = {
      "good": np.zeros((batch_size, 2)),
      "short": np.zeros((batch_size - 1, 2)),
      "scalar": np.float32(1.0),
    }

    with self.assertRaisesRegex(
      ValueError, r"\['scalar'\]: shape \(\); \['short'\]: shape"
    ):
      parallel.shard_batch(batch, self.mesh, batch_size)


if __name__ == "__main__":
  absltest.main()
