"""Test configuration shared by every test and doctest in the repository.

Four CPU devices are forced before JAX is imported, so that pmap, shard_map
and sharded jit are tested everywhere; rank promotion is strict so that an
accidental broadcast fails loudly.
"""

import os

_FLAG = "--xla_force_host_platform_device_count=4"
if "xla_force_host_platform_device_count" not in os.environ.get(
  "XLA_FLAGS", ""
):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}"

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

_ENTRY_POINTS = ("main.py", "demo.py", "compare.py")


def pytest_ignore_collect(collection_path):
  """Skips doctest collection of entry-point scripts.

  They define absl flags at import, so importing several into one process
  (as doctest collection would) redefines the same flags. Their behaviour is
  tested by running them in subprocesses instead.
  """
  if collection_path.suffix != ".py" or collection_path.name.endswith(
    "_test.py"
  ):
    return None
  parts = collection_path.parts
  if "benchmarks" in parts:
    return True
  if "examples" in parts and collection_path.name in _ENTRY_POINTS:
    return True
  return None
