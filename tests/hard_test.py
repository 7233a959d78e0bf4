"""Hard functions against NumPy references, with and without jit."""

import chex
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from dabjax import hard

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 5, 7)).astype(np.float32)
CODEBOOK = RNG.normal(size=(4, 7)).astype(np.float32)


def _nearest(x, centroids):
  d = ((x[..., None, :] - centroids) ** 2).sum(-1)
  return d.argmin(-1)


REFERENCES = (
  (
    "signum",
    lambda x: hard.signum(x, 0.5),
    lambda x: np.where(x > 0.5, 1.0, np.where(x < -0.5, -1.0, 0.0)),
  ),
  ("sign", hard.sign, lambda x: np.where(x >= 0, 1.0, -1.0)),
  ("binarize", hard.binarize, lambda x: (x > 0).astype(np.float32)),
  (
    "one_hot_argmax",
    hard.one_hot_argmax,
    lambda x: np.eye(7)[x.argmax(-1)],
  ),
  (
    "top_k_mask",
    lambda x: hard.top_k_mask(x, 3),
    lambda x: (x >= np.sort(x, -1)[..., -3:-2]).astype(np.float32),
  ),
  ("sort", hard.sort, lambda x: np.sort(x, -1)),
  (
    "argsort_matrix",
    hard.argsort_matrix,
    lambda x: np.eye(7)[np.argsort(x, -1, kind="stable")],
  ),
  (
    "quantize",
    lambda x: hard.quantize(x, CODEBOOK),
    lambda x: CODEBOOK[_nearest(x, CODEBOOK)],
  ),
  (
    "quantize_one_hot",
    lambda x: hard.quantize_one_hot(x, CODEBOOK),
    lambda x: np.eye(4)[_nearest(x, CODEBOOK)],
  ),
  (
    "round_to_levels",
    lambda x: hard.round_to_levels(x, 5, -1.0, 1.0),
    lambda x: np.round((np.clip(x, -1, 1) + 1) / 0.5) * 0.5 - 1,
  ),
)


class HardFunctionsTest(chex.TestCase, parameterized.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters(*REFERENCES)
  def test_matches_reference(self, fn, reference):
    got = self.variant(fn)(jnp.asarray(X))
    np.testing.assert_allclose(got, reference(X), rtol=1e-6, atol=1e-6)
    self.assertEqual(got.dtype, jnp.float32)

  @parameterized.named_parameters(*REFERENCES)
  def test_keeps_low_precision_dtype(self, fn, reference):
    del reference
    self.assertEqual(fn(jnp.asarray(X, jnp.bfloat16)).dtype, jnp.bfloat16)

  def test_argsort_matrix_sorts(self):
    perm = hard.argsort_matrix(jnp.asarray(X))
    np.testing.assert_allclose(
      jnp.einsum("...ij,...j->...i", perm, X), np.sort(X, -1), rtol=1e-6
    )

  def test_signum_margin_is_respected(self):
    x = jnp.array([-0.31, -0.29, 0.29, 0.31])
    np.testing.assert_array_equal(
      hard.signum(x, margin=0.3), jnp.array([-1.0, 0.0, 0.0, 1.0])
    )


if __name__ == "__main__":
  absltest.main()
