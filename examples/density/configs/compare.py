"""The CPU comparison: a short budget of the default protocol.

Linear architecture, 2000 steps of batch 50 (100,000 images, 1.7 epochs).
Every 1000 steps: the 100-sample bound on the first 500 test images and the
encoder-gradient variance over 50 draws; at the end, the 1000-sample bound
on the first 200 test images.
"""

from examples.density.configs import default


def get_config():
  config = default.get_config()
  config.num_steps = 2000
  config.log_every = 250
  config.eval_every = 1000
  config.checkpoint_every = 1000
  config.eval_size = 500
  config.eval_chunk = 50
  config.final_iw_size = 200
  config.final_iw_chunk = 5
  config.grad_draws = 50
  return config
