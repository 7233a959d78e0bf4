"""About two minutes on a laptop CPU: long enough to show learning."""

from examples.sort.configs import default


def get_config():
  config = default.get_config()
  config.learning_rate = 1e-3
  config.batch_size = 256
  config.num_steps = 6000
  config.log_every = 200
  config.eval_every = 1000
  config.checkpoint_every = 2000
  config.eval_size = 20_000
  config.eval_chunk = 5000
  return config
