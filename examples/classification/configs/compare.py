"""The budget of the measured comparison: minutes on a 2-core CPU per run.

A smaller trunk (8 and 16 channels), batch 64 and a few hundred steps, so
that every estimator with 3 seeds fits in about ten minutes on a shared
2-core CPU. The test accuracy is measured on the first 5000 test images.
"""

from examples.classification.configs import default


def get_config():
  config = default.get_config()
  config.conv_features = (8, 16)
  config.batch_size = 64
  config.num_steps = 300
  config.log_every = 50
  config.eval_every = 100
  config.checkpoint_every = 300
  config.eval_size = 5000
  return config
