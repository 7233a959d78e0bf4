"""Seconds on a CPU: enough to test that every estimator runs end to end."""

from examples.classification.configs import default


def get_config():
  config = default.get_config()
  config.conv_features = (4,)
  config.groups = 4
  config.group_size = 4
  config.bridge_hidden = (16,)
  config.learning_rate = 1e-2
  config.batch_size = 32
  config.num_steps = 40
  config.log_every = 10
  config.eval_every = 20
  config.checkpoint_every = 20
  config.eval_chunk = 64
  return config
