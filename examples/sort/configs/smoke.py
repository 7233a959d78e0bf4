"""Seconds on a CPU: enough to test that every estimator runs end to end."""

from examples.sort.configs import default


def get_config():
  config = default.get_config()
  config.bridge_hidden = (16,)
  config.ptrnet_hidden = 16
  config.learning_rate = 1e-3
  config.batch_size = 32
  config.num_steps = 20
  config.log_every = 5
  config.eval_every = 10
  config.checkpoint_every = 10
  config.eval_size = 256
  config.eval_chunk = 128
  return config
