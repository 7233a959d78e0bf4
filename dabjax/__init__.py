"""dabjax: train through hard functions with Differentiable Approximation
Bridges.

The API at a glance:

* `dab_bridge` pairs a hard function with a learned bridge; `DabBridge` is
  what it returns (``init``, ``apply``, ``inference``).
* `dabjax.hard`: hard functions (signum, sign, binarize, one-hot argmax,
  top-k mask, sort, argsort matrix, quantisation, rounding).
* Bridges: `DenseBridge`, `ElementwiseBridge`, `ConvBridge`,
  `default_bridge`.
* Estimators with the same call shape: `StraightThrough`, `GumbelSoftmax`;
  `Estimator` and `EstimatorAux` define that shape.
* Layers: `dabjax.linen.DabLayer`, `dabjax.nnx.DabLayer`, and
  `bridge_losses` to gather their losses.
* Diagnostics: `bridge_metrics`.
"""

from dabjax import hard as hard
from dabjax import linen as linen
from dabjax import nnx as nnx
from dabjax.bridges import ConvBridge as ConvBridge
from dabjax.bridges import DenseBridge as DenseBridge
from dabjax.bridges import ElementwiseBridge as ElementwiseBridge
from dabjax.bridges import default_bridge as default_bridge
from dabjax.collect import bridge_losses as bridge_losses
from dabjax.diagnostics import bridge_metrics as bridge_metrics
from dabjax.estimators import Estimator as Estimator
from dabjax.estimators import EstimatorAux as EstimatorAux
from dabjax.estimators import GumbelSoftmax as GumbelSoftmax
from dabjax.estimators import StraightThrough as StraightThrough
from dabjax.transform import DabBridge as DabBridge
from dabjax.transform import dab_bridge as dab_bridge

__version__ = "0.1.0"

__all__ = (
  "ConvBridge",
  "DabBridge",
  "DenseBridge",
  "ElementwiseBridge",
  "Estimator",
  "EstimatorAux",
  "GumbelSoftmax",
  "StraightThrough",
  "bridge_losses",
  "bridge_metrics",
  "dab_bridge",
  "default_bridge",
  "hard",
  "linen",
  "nnx",
)
