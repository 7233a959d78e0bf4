"""Runs an example's command line in a fresh process, for the tests.

Each process gets its own forced CPU device count, so a test can compare one
device with four, kill a run with SIGKILL, or join two processes with
`jax.distributed`, whatever devices the test session itself holds.
"""

import os
import pathlib
import socket
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_S = 240


def start(module: str, workdir, devices: int, *flags: str) -> subprocess.Popen:
  """Starts ``python -m <module> --workdir=<workdir> <flags>`` on the CPU.

  Args:
    module: the entry point, e.g. ``"examples.sort.main"``.
    workdir: the run's directory.
    devices: how many CPU devices the process forces.
    *flags: further command-line flags.

  Returns:
    The running process; its output goes to a temporary file that `finish`
    reads.
  """
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  log = tempfile.TemporaryFile("w+")
  process = subprocess.Popen(
    [sys.executable, "-m", module, f"--workdir={workdir}", *flags],
    cwd=REPO,
    env=env,
    stdout=log,
    stderr=subprocess.STDOUT,
  )
  process.log = log
  return process


def finish(process: subprocess.Popen, returncode: int = 0) -> str:
  """Waits for a process started by `start` and returns its output.

  Raises:
    AssertionError: if it ends with another return code, with the tail of
      its output.
  """
  try:
    process.wait(TIMEOUT_S)
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()
  process.log.seek(0)
  output = process.log.read()
  process.log.close()
  if process.returncode != returncode:
    raise AssertionError(
      f"{process.args} ended with {process.returncode}, expected "
      f"{returncode}:\n{output[-4000:]}"
    )
  return output


def free_port() -> int:
  """A localhost port that is free now, for a `jax.distributed` coordinator."""
  with socket.socket() as probe:
    probe.bind(("localhost", 0))
    return probe.getsockname()[1]
