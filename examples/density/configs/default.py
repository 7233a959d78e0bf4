"""The DisARM-style protocol on dynamically binarised Fashion-MNIST.

200 Bernoulli latents, batch 50, Adam at 1e-4 for the model; the test figure
is the 100-sample importance-weighted bound on the test set, re-binarised at
each evaluation, and the final models get a 1000-sample bound. The step
count follows that literature's long runs (10^6 steps): accelerator time.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist"
  config.data_dir = ""  # "" means the dataset's default location.
  config.architecture = "linear"  # linear | nonlinear
  config.estimator = "dab"  # dab | reinforce | relax | concrete | ste
  config.latents = 200
  config.hidden = 200

  # Estimator settings.
  config.bridge_hidden = (32, 32)
  config.gamma = 10.0
  config.concrete_temperature = 0.5
  config.relax_hidden = (200,)
  config.relax_temperature = 0.5
  config.baseline_decay = 0.99

  config.learning_rate = 1e-4
  # Adam rate of the estimator's own parameters (DAB's bridge, RELAX's φ).
  config.estimator_learning_rate = 1e-3

  config.batch_size = 50
  config.num_steps = 1_000_000
  config.seed = 0
  config.log_every = 1000
  config.eval_every = 50_000
  config.checkpoint_every = 50_000

  config.eval_size = 10_000
  config.eval_samples = 100
  config.eval_chunk = 100
  config.final_iw_samples = 1000
  config.final_iw_size = 10_000
  config.final_iw_chunk = 10
  config.grad_batch = 50
  config.grad_draws = 100
  return config
