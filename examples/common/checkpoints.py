"""Orbax checkpoints of a train state that survive a killed run.

Orbax writes each step to a temporary directory and renames it when complete,
so a run killed while saving leaves the earlier checkpoints intact, and it
deletes the oldest checkpoint only after a newer one has been committed. A
committed checkpoint that cannot be read back (a truncated or corrupted file)
is moved aside with a warning, and the one before it is used.
"""

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils


def manager(
  directory: str | pathlib.Path, max_to_keep: int = 3
) -> ocp.CheckpointManager:
  """Returns a checkpoint manager that keeps the latest `max_to_keep` steps.

  Saves are asynchronous: `save` returns once the state has been copied to the
  host. Call `close` on the manager to wait for the last save.

  Args:
    directory: where the step directories live; created if missing.
    max_to_keep: how many of the latest checkpoints to keep.

  Returns:
    An `orbax.checkpoint.CheckpointManager`.

  Raises:
    ValueError: if `max_to_keep` is not positive.
  """
  if max_to_keep < 1:
    raise ValueError(
      "checkpoints.manager: max_to_keep must be at least 1. Got "
      f"{max_to_keep}. Keep one checkpoint or more."
    )
  options = ocp.CheckpointManagerOptions(
    preservation_policy=ocp.checkpoint_managers.LatestN(max_to_keep),
    cleanup_tmp_directories=True,
  )
  return ocp.CheckpointManager(
    pathlib.Path(directory).absolute(), options=options
  )


def save(mngr: ocp.CheckpointManager, step: int, state: Any) -> None:
  """Starts saving `state` as step `step`; every process must call it.

  Args:
    mngr: from `manager`.
    step: the number of train steps that produced `state`.
    state: a pytree of arrays.
  """
  mngr.save(step, args=ocp.args.StandardSave(state))
  logging.info("Saving checkpoint of step %d under %s", step, mngr.directory)


def restore_latest(
  mngr: ocp.CheckpointManager, target: Any
) -> tuple[int, Any] | None:
  """Restores the latest checkpoint that can be read.

  Checkpoints newer than the restored one could not be read: each is logged
  as a warning and moved to a sibling directory named
  `<directory>_damaged`, so that the run can save those steps again.

  Args:
    mngr: from `manager`.
    target: a pytree of `jax.ShapeDtypeStruct`s with shardings (for example
      from `jax.eval_shape`) that says what to restore and where to put it.

  Returns:
    `(step, state)`, or `None` when there is no checkpoint.

  Raises:
    ValueError: if there are checkpoints but none of them can be restored
      into `target`.
  """
  failures = []
  for step in sorted(mngr.all_steps(), reverse=True):
    # Orbax and TensorStore raise many kinds of errors for unreadable files.
    try:
      state = mngr.restore(step, args=ocp.args.StandardRestore(target))
    except Exception as error:
      failures.append((step, error))
      continue
    for bad_step, bad_error in failures:
      _move_aside(mngr, bad_step, bad_error)
    if failures:
      mngr.reload()
    logging.info("Restored checkpoint of step %d from %s", step, mngr.directory)
    return step, state

  if not failures:
    return None
  tried = "; ".join(
    f"step {step}: {type(error).__name__}: {error}" for step, error in failures
  )
  raise ValueError(
    f"checkpoints.restore_latest: no checkpoint under {mngr.directory} can "
    f"be restored into the train state. Got {tried}. If the model or its "
    "config changed since they were written, use a new --workdir; if they "
    "are damaged, delete that directory to start over."
  )


def _move_aside(mngr: ocp.CheckpointManager, step: int, error: Exception):
  """Moves an unreadable step directory out of the manager's directory."""
  directory = pathlib.Path(mngr.directory)
  damaged = directory.with_name(directory.name + "_damaged")
  destination = damaged / str(step)
  suffix = 1
  while destination.exists():
    destination = damaged / f"{step}.{suffix}"
    suffix += 1
  logging.warning(
    "Checkpoint of step %d under %s cannot be restored (%s: %s); moving it "
    "to %s and using the one before it.",
    step,
    directory,
    type(error).__name__,
    error,
    destination,
  )
  if jax.process_index() == 0:
    damaged.mkdir(parents=True, exist_ok=True)
    (directory / str(step)).rename(destination)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(f"checkpoints: moved step {step}")
