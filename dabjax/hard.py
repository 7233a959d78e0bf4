"""Hard functions: exact, non-differentiable maps that DAB trains through.

Every function here is `jit`-able, works on any number of leading batch axes
and returns floating arrays of the input's dtype, because a bridge imitates
the output with a squared error. Shapes are written with these axes:

* ``[..., features]``: any leading batch axes, then one feature axis;
* ``[..., features, dim]``: vectors to be quantised, each of size ``dim``;
* ``[centroids, dim]``: a codebook.

Their derivatives are zero almost everywhere (or, for the sort, a
permutation that says nothing about how the order would change), which is
why they need a bridge.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _check_floating(name: str, x: jax.Array) -> jax.Array:
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(
      f"{name}: the input must be a floating array. Got dtype {x.dtype}. "
      "Cast it first, e.g. x.astype(jnp.float32)."
    )
  return x


def signum(x: jax.Array, margin: float = 0.5) -> jax.Array:
  """Three-level sign with a dead zone: -1 below -margin, +1 above, else 0.

  This is the hard layer of the paper's sorting experiment (margin 0.5).

  Args:
    x: ``[...]`` floating array.
    margin: half-width of the band mapped to 0; must be non-negative.

  Returns:
    ``[...]`` array of -1, 0 and +1 in ``x.dtype``.

  Raises:
    TypeError: if ``x`` is not floating.
    ValueError: if ``margin`` is negative.

  Example:
    >>> import jax.numpy as jnp
    >>> signum(jnp.array([-0.9, -0.2, 0.3, 0.7]))
    Array([-1.,  0.,  0.,  1.], dtype=float32)
  """
  x = _check_floating("signum", x)
  if margin < 0:
    raise ValueError(
      f"signum: margin must be non-negative. Got {margin}. Pass margin >= 0."
    )
  one = jnp.ones_like(x)
  return jnp.where(x > margin, one, jnp.where(x < -margin, -one, 0 * one))


def sign(x: jax.Array) -> jax.Array:
  """Binary sign: +1 where ``x >= 0``, -1 elsewhere (never 0).

  Args:
    x: ``[...]`` floating array.

  Returns:
    ``[...]`` array of -1 and +1 in ``x.dtype``.

  Raises:
    TypeError: if ``x`` is not floating.

  Example:
    >>> import jax.numpy as jnp
    >>> sign(jnp.array([-2.0, 0.0, 3.0]))
    Array([-1.,  1.,  1.], dtype=float32)
  """
  x = _check_floating("sign", x)
  return jnp.where(x >= 0, 1.0, -1.0).astype(x.dtype)


def binarize(x: jax.Array, threshold: float = 0.0) -> jax.Array:
  """Heaviside step: 1 where ``x > threshold``, 0 elsewhere.

  Args:
    x: ``[...]`` floating array.
    threshold: the step's position.

  Returns:
    ``[...]`` array of 0 and 1 in ``x.dtype``.

  Raises:
    TypeError: if ``x`` is not floating.

  Example:
    >>> import jax.numpy as jnp
    >>> binarize(jnp.array([-1.0, 0.0, 0.5]))
    Array([0., 0., 1.], dtype=float32)
  """
  x = _check_floating("binarize", x)
  return (x > threshold).astype(x.dtype)


def one_hot_argmax(x: jax.Array) -> jax.Array:
  """One-hot vector of the largest entry along the last axis.

  Ties go to the first maximal entry, as in `jnp.argmax`. Use this instead of
  `jnp.argmax` inside `dab_bridge`: a bridge imitates floats, not indices.

  Args:
    x: ``[..., features]`` floating array (logits).

  Returns:
    ``[..., features]`` one-hot array in ``x.dtype``.

  Raises:
    TypeError: if ``x`` is not floating.

  Example:
    >>> import jax.numpy as jnp
    >>> one_hot_argmax(jnp.array([0.1, 2.0, -1.0]))
    Array([0., 1., 0.], dtype=float32)
  """
  x = _check_floating("one_hot_argmax", x)
  return jax.nn.one_hot(jnp.argmax(x, axis=-1), x.shape[-1], dtype=x.dtype)


def top_k_mask(x: jax.Array, k: int) -> jax.Array:
  """Indicator of the ``k`` largest entries along the last axis.

  Args:
    x: ``[..., features]`` floating array.
    k: how many entries to keep, ``1 <= k <= features``.

  Returns:
    ``[..., features]`` array with ``k`` ones per row and zeros elsewhere.

  Raises:
    TypeError: if ``x`` is not floating.
    ValueError: if ``k`` is out of range.

  Example:
    >>> import jax.numpy as jnp
    >>> top_k_mask(jnp.array([0.3, 0.9, 0.1, 0.5]), k=2)
    Array([0., 1., 0., 1.], dtype=float32)
  """
  x = _check_floating("top_k_mask", x)
  n = x.shape[-1]
  if not 1 <= k <= n:
    raise ValueError(
      f"top_k_mask: k must lie in [1, {n}] for {n} features. Got k={k}. "
      "Choose k between 1 and the size of the last axis."
    )
  _, idx = jax.lax.top_k(x, k)
  return jax.nn.one_hot(idx, n, dtype=x.dtype).sum(axis=-2)


def sort(x: jax.Array) -> jax.Array:
  """Values sorted in ascending order along the last axis.

  Args:
    x: ``[..., features]`` floating array.

  Returns:
    ``[..., features]`` sorted copy of ``x``.

  Raises:
    TypeError: if ``x`` is not floating.

  Example:
    >>> import jax.numpy as jnp
    >>> sort(jnp.array([0.3, -1.0, 2.0]))
    Array([-1. ,  0.3,  2. ], dtype=float32)
  """
  x = _check_floating("sort", x)
  return jnp.sort(x, axis=-1)


def argsort_matrix(x: jax.Array) -> jax.Array:
  """The ascending sort of the last axis as a permutation matrix.

  Row ``i`` is the one-hot position, in ``x``, of the ``i``-th smallest
  value, so ``argsort_matrix(x) @ x[..., None]`` is the sorted ``x``. The
  output has a different shape from the input, which the straight-through
  estimator cannot handle and a bridge can.

  Args:
    x: ``[..., features]`` floating array.

  Returns:
    ``[..., features, features]`` permutation matrices in ``x.dtype``.

  Raises:
    TypeError: if ``x`` is not floating.

  Example:
    >>> import jax.numpy as jnp
    >>> argsort_matrix(jnp.array([0.5, 0.1, 0.9]))
    Array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
  """
  x = _check_floating("argsort_matrix", x)
  order = jnp.argsort(x, axis=-1)
  return jax.nn.one_hot(order, x.shape[-1], dtype=x.dtype)


def _nearest(
  name: str, x: jax.Array, centroids: jax.Array
) -> tuple[jax.Array, jax.Array]:
  x = _check_floating(name, x)
  centroids = jnp.asarray(centroids)
  if centroids.ndim != 2 or centroids.shape[-1] != x.shape[-1]:
    raise ValueError(
      f"{name}: centroids must have shape [centroids, dim] with dim equal to "
      f"the last axis of x ({x.shape[-1]}). Got centroids of shape "
      f"{centroids.shape} for x of shape {x.shape}. Reshape the codebook."
    )
  centroids = centroids.astype(x.dtype)
  # ||x - c||^2 up to the ||x||^2 term, which does not change the argmin.
  cross = jnp.einsum("...d,kd->...k", x, centroids)
  norms = jnp.sum(centroids**2, axis=-1).reshape((1,) * (x.ndim - 1) + (-1,))
  scores = norms - 2 * cross
  return jnp.argmin(scores, axis=-1), centroids


def quantize(x: jax.Array, centroids: jax.Array) -> jax.Array:
  """Each vector replaced by its nearest centroid (vector quantisation).

  The centroids are an argument, not a constant: inside `dab_bridge` they
  receive no gradient through this function (train them with their own
  loss, e.g. a k-means or commitment term).

  Args:
    x: ``[..., dim]`` floating array of vectors.
    centroids: ``[centroids, dim]`` codebook.

  Returns:
    ``[..., dim]`` array: the nearest centroid of each vector.

  Raises:
    TypeError: if ``x`` is not floating.
    ValueError: if the codebook's shape does not fit ``x``.

  Example:
    >>> import jax.numpy as jnp
    >>> codebook = jnp.array([[0.0, 0.0], [1.0, 1.0]])
    >>> quantize(jnp.array([[0.2, 0.1], [0.8, 0.7]]), codebook)
    Array([[0., 0.],
           [1., 1.]], dtype=float32)
  """
  idx, centroids = _nearest("quantize", x, centroids)
  return centroids[idx]


def quantize_one_hot(x: jax.Array, centroids: jax.Array) -> jax.Array:
  """One-hot assignment of each vector to its nearest centroid (k-means).

  Args:
    x: ``[..., dim]`` floating array of vectors.
    centroids: ``[centroids, dim]`` codebook.

  Returns:
    ``[..., centroids]`` one-hot assignments in ``x.dtype``.

  Raises:
    TypeError: if ``x`` is not floating.
    ValueError: if the codebook's shape does not fit ``x``.

  Example:
    >>> import jax.numpy as jnp
    >>> codebook = jnp.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    >>> quantize_one_hot(jnp.array([1.9, 2.2]), codebook)
    Array([0., 0., 1.], dtype=float32)
  """
  idx, centroids = _nearest("quantize_one_hot", x, centroids)
  return jax.nn.one_hot(idx, centroids.shape[0], dtype=x.dtype)


def round_to_levels(
  x: jax.Array, levels: int, low: float = 0.0, high: float = 1.0
) -> jax.Array:
  """Clips to ``[low, high]`` and rounds to ``levels`` evenly spaced values.

  Args:
    x: ``[...]`` floating array.
    levels: number of output values, at least 2 (2 gives {low, high}).
    low: the smallest level.
    high: the largest level; must exceed ``low``.

  Returns:
    ``[...]`` array whose entries are among the ``levels`` values.

  Raises:
    TypeError: if ``x`` is not floating.
    ValueError: if ``levels < 2`` or ``high <= low``.

  Example:
    >>> import jax.numpy as jnp
    >>> round_to_levels(jnp.array([-0.3, 0.2, 0.4, 1.7]), levels=3)
    Array([0. , 0. , 0.5, 1. ], dtype=float32)
  """
  x = _check_floating("round_to_levels", x)
  if levels < 2 or not high > low:
    raise ValueError(
      "round_to_levels: need levels >= 2 and high > low. Got "
      f"levels={levels}, low={low}, high={high}. Fix the range or the count."
    )
  step = (high - low) / (levels - 1)
  return (jnp.round((jnp.clip(x, low, high) - low) / step) * step + low).astype(
    x.dtype
  )
