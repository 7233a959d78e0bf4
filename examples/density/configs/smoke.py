"""Seconds on a CPU: every estimator end to end on a small model."""

from examples.density.configs import default


def get_config():
  config = default.get_config()
  config.latents = 16
  config.hidden = 16
  config.bridge_hidden = (8,)
  config.relax_hidden = (8,)
  config.learning_rate = 1e-3
  config.batch_size = 8
  config.num_steps = 6
  config.log_every = 3
  config.eval_every = 3
  config.checkpoint_every = 3
  config.eval_size = 16
  config.eval_samples = 4
  config.eval_chunk = 8
  config.final_iw_samples = 8
  config.final_iw_size = 8
  config.final_iw_chunk = 4
  config.grad_batch = 8
  config.grad_draws = 10
  return config
