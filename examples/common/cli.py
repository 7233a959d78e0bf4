"""Command line of every example: absl flags around an ml_collections config.

An example's `main.py` is only

    from examples.common import cli
    from examples.sort import train

    if __name__ == "__main__":
      cli.run(train.train_and_evaluate)

and is run as

    python -m examples.sort.main --config=examples/sort/configs/default.py \\
      --workdir=/tmp/sort --config.num_steps=1000

Orbax's many info lines are dropped from the log; its warnings stay. On
several hosts, every process gets the same `--coordinator_address` and
`--num_processes` and its own `--process_id`; `jax.distributed` is
initialised only when `--coordinator_address` is given.
"""

import logging as std_logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """Defines `--config`, `--workdir` and the `jax.distributed` flags.

  Does nothing when they are defined already.
  """
  if "workdir" in FLAGS:
    return
  config_flags.DEFINE_config_file(
    "config",
    None,
    "Path to an ml_collections config file; override its fields with "
    "--config.<field>=<value>.",
    lock_config=True,
  )
  flags.DEFINE_string("workdir", None, "Directory for checkpoints and logs.")
  flags.DEFINE_string(
    "coordinator_address",
    None,
    "host:port of process 0 for jax.distributed; omit on one host.",
  )
  flags.DEFINE_integer(
    "num_processes", None, "Number of processes for jax.distributed."
  )
  flags.DEFINE_integer(
    "process_id", None, "This process's index for jax.distributed."
  )
  flags.mark_flags_as_required(["config", "workdir"])


def run(train_and_evaluate: Callable[[Any, str], Mapping[str, float]]) -> None:
  """Parses the flags and calls `train_and_evaluate(config, workdir)`.

  Args:
    train_and_evaluate: the example's entry point; its returned metrics are
      logged.
  """
  _define_flags()
  app.run(lambda argv: _main(argv, train_and_evaluate))


class _QuietOrbax(std_logging.Filter):
  """Drops Orbax's log records below WARNING."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    inside_orbax = f"{os.sep}orbax{os.sep}" in record.pathname
    return record.levelno >= std_logging.WARNING or not inside_orbax


def quiet_orbax() -> None:
  """Drops Orbax's info lines from the absl log; its warnings stay."""
  logging.get_absl_handler().addFilter(_QuietOrbax())


def _main(argv, train_and_evaluate) -> None:
  quiet_orbax()
  if len(argv) > 1:
    raise app.UsageError(
      f"cli: every argument must be a flag. Got {argv[1:]}. Write them as "
      "--name=value."
    )
  if FLAGS.coordinator_address is not None:
    # CPU processes exchange arrays through gloo; other backends ignore it.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
      coordinator_address=FLAGS.coordinator_address,
      num_processes=FLAGS.num_processes,
      process_id=FLAGS.process_id,
    )
  elif FLAGS.num_processes is not None or FLAGS.process_id is not None:
    raise app.UsageError(
      "cli: --num_processes and --process_id need --coordinator_address. "
      f"Got num_processes={FLAGS.num_processes}, "
      f"process_id={FLAGS.process_id}. Add "
      "--coordinator_address=<host of process 0>:<port>."
    )

  logging.info(
    "Process %d of %d, %d local devices of %d",
    jax.process_index(),
    jax.process_count(),
    jax.local_device_count(),
    jax.device_count(),
  )
  logging.info("Config:\n%s", FLAGS.config)
  final = train_and_evaluate(FLAGS.config, FLAGS.workdir)
  logging.info("Final metrics: %s", final)
