"""Seconds on a CPU: enough to test that every combination runs end to end."""

from examples.representation.configs import default


def get_config():
  config = default.get_config()
  config.bits = 16
  config.num_variables = 4
  config.classes = 5
  config.vectors = 4
  config.dim = 2
  config.centroids = 8
  config.hidden = (32,)
  config.bridge_hidden = (16,)
  config.batch_size = 16
  config.num_steps = 8
  config.log_every = 4
  config.eval_every = 4
  config.checkpoint_every = 4
  config.eval_size = 64
  config.eval_chunk = 32
  config.probe_train_size = 64
  config.probe_steps = 20
  return config
