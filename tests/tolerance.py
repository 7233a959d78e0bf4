"""The one place that decides how close two floating results must be."""

import jax
import jax.numpy as jnp

_BASE = {
  jnp.dtype(jnp.float64): 1e-12,
  jnp.dtype(jnp.float32): 1e-6,
  jnp.dtype(jnp.bfloat16): 1e-2,
  jnp.dtype(jnp.float16): 1e-3,
}


def tolerance(dtype=jnp.float32) -> dict[str, float]:
  """``rtol``/``atol`` for comparing results computed in ``dtype``.

  Accelerators reorder reductions and use faster matmul passes, so they get
  a looser bound than the CPU.
  """
  base = _BASE[jnp.dtype(dtype)]
  if jax.default_backend() != "cpu":
    base *= 100
  return {"rtol": 10 * base, "atol": 10 * base}
