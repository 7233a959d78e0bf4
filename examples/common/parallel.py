"""Data parallelism over every device with a mesh and sharded `jit`.

The mesh has one axis, `'data'`, over every device of every process. A batch
is a pytree of arrays shaped `[batch, ...]`; it is split along its first axis
over `'data'`, while the train state is replicated on every device. With
several processes (`jax.distributed`), each process builds only its own rows
of the global batch and `jax.make_array_from_process_local_data` joins them.
"""

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

DATA_AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
  """Returns a one-axis mesh named `'data'`.

  Args:
    devices: the devices of the mesh; every device of every process when
      omitted.

  Returns:
    A `jax.sharding.Mesh` of shape `[num_devices]` with axis `'data'`.
  """
  devices = jax.devices() if devices is None else devices
  return jax.sharding.Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
  """Returns the sharding that keeps a full copy on every device of `mesh`."""
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def batch_sharding(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
  """Returns the sharding that splits axis 0 over the `'data'` axis."""
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(DATA_AXIS))


def local_rows(batch_size: int, mesh: jax.sharding.Mesh | None = None) -> slice:
  """Returns the rows of the global batch that this process must build.

  With one process this is every row. With several, each process holds the
  rows of its own devices: a data loader that builds rows `local_rows(n)` of
  the global batch of step `s` on every process gives the same global batch
  as one process building all `n` rows.

  >>> local_rows(8, data_mesh(jax.devices()[:1]))
  slice(0, 8, None)

  Args:
    batch_size: the global batch size, over all processes.
    mesh: the data mesh; `data_mesh()` when omitted.

  Returns:
    A `slice` of `range(batch_size)`.

  Raises:
    ValueError: if `batch_size` is not a positive multiple of the number of
      devices in the mesh.
  """
  mesh = data_mesh() if mesh is None else mesh
  if batch_size <= 0 or batch_size % mesh.size:
    raise ValueError(
      "parallel: the global batch must split evenly over the devices. Got "
      f"batch_size={batch_size} for {mesh.size} devices. Set "
      f"config.batch_size to a positive multiple of {mesh.size}."
    )

  index_map = batch_sharding(mesh).addressable_devices_indices_map(
    (batch_size,)
  )
  spans = sorted(
    (range(batch_size)[index[0]] for index in index_map.values()),
    key=lambda span: span.start,
  )
  starts = [span.start for span in spans]
  stops = [span.stop for span in spans]
  # make_array_from_process_local_data needs this process's rows contiguous.
  if starts[1:] != stops[:-1]:
    raise ValueError(
      "parallel: this process's devices must hold contiguous rows of the "
      f"batch. Got row ranges starting at {starts}. Build the mesh from "
      "jax.devices(), which orders devices by process."
    )
  return slice(starts[0], stops[-1])


def shard_batch(batch: Any, mesh: jax.sharding.Mesh, batch_size: int) -> Any:
  """Puts this process's rows of a batch on the mesh as global arrays.

  Args:
    batch: a pytree of host arrays shaped `[local_batch, ...]`, the rows
      `local_rows(batch_size, mesh)` of the global batch.
    mesh: the data mesh.
    batch_size: the global batch size, over all processes.

  Returns:
    A pytree of `jax.Array`s shaped `[batch_size, ...]`, split over `'data'`.

  Raises:
    ValueError: if `batch_size` does not split evenly over the devices, or if
      a leaf does not have this process's number of rows.
  """
  rows = local_rows(batch_size, mesh)
  local_size = rows.stop - rows.start
  leaves = jax.tree_util.tree_leaves_with_path(batch)
  bad = [
    f"{jax.tree_util.keystr(path)}: shape {np.shape(leaf)}"
    for path, leaf in leaves
    if np.ndim(leaf) == 0 or np.shape(leaf)[0] != local_size
  ]
  if bad:
    raise ValueError(
      "parallel: every batch leaf must have this process's "
      f"{local_size} rows of the global batch of {batch_size} on axis 0. "
      f"Got {'; '.join(bad)}. Return rows local_rows(batch_size) of the "
      "global batch from batch_fn."
    )

  sharding = batch_sharding(mesh)

  def put(leaf):
    leaf = np.asarray(leaf)
    shape = (batch_size, *leaf.shape[1:])
    return jax.make_array_from_process_local_data(sharding, leaf, shape)

  return jax.tree.map(put, batch)
