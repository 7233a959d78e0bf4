"""The CPU budget of `compare.py`: 1000 steps of 128 images (2.1 epochs).

Sized so that four estimators times three seeds of one code take about ten
minutes on a shared 2-core CPU; a comparison at this budget ranks the
estimators early in training, not at convergence.
"""

from examples.representation.configs import default


def get_config():
  config = default.get_config()
  config.num_steps = 1000
  config.log_every = 100
  config.eval_every = 1000
  config.checkpoint_every = 1000
  return config
