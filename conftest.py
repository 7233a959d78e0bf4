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
