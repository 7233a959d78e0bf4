"""A full run: 50 epochs of Fashion-MNIST with a 128-bit binary code.

The paper's settings beyond the code types are not available to us; these
are the usual choices for an MLP autoencoder on 28x28 images.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.code = "binary"  # binary | categorical | vq
  config.estimator = "dab"  # dab | gumbel | gumbel_st | ste
  config.bits = 128
  config.num_variables = 30
  config.classes = 10
  config.vectors = 32
  config.dim = 4
  config.centroids = 16
  config.commitment = 0.25
  config.hidden = (512, 256)
  config.bridge_hidden = (256,)
  config.gamma = 10.0
  # Gumbel-Softmax: exponential annealing from start to end over training.
  config.temperature_start = 1.0
  config.temperature_end = 0.5

  config.dataset = "fashion_mnist"
  # Empty: the default directory (or $DABJAX_FASHION_MNIST_DIR).
  config.data_dir = ""

  config.learning_rate = 1e-3
  config.batch_size = 128
  config.num_steps = 23_400  # 50 epochs of 468 batches
  config.seed = 0
  config.log_every = 200
  config.eval_every = 2340
  config.checkpoint_every = 2340
  config.eval_size = 10_000
  config.eval_chunk = 1000
  config.probe_train_size = 10_000
  config.probe_steps = 500
  config.probe_learning_rate = 1e-2
  return config
