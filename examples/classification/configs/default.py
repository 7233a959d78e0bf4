"""A real-scale run: Fashion-MNIST, 30 epochs of batch 128, DAB.

16 groups of 8 features are sorted between a two-layer conv trunk (32 and 64
channels) and a linear head. The bridge is a 8 -> 64 -> 64 -> 8 tanh MLP
shared across groups, trained with γ = 10 (the paper's sorting setting).
Set ``dataset="cifar10"`` to read CIFAR-10 from a prepared TFDS directory.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.estimator = "dab"  # dab | ste | softsort | exact | none
  config.bridge = "group"  # group | full
  config.bridge_hidden = (64, 64)
  config.gamma = 10.0
  config.temperature = 0.1  # of softsort

  config.dataset = "fashion_mnist"  # or any prepared TFDS name, "cifar10"
  config.data_dir = ""  # "" for the default location
  config.num_classes = 10
  config.train_size = 0  # 0: the whole split
  config.eval_size = 0
  config.eval_chunk = 1000

  config.conv_features = (32, 64)
  config.groups = 16
  config.group_size = 8

  config.learning_rate = 1e-3
  # 0 means: the same rate as the model.
  config.bridge_learning_rate = 0.0

  config.batch_size = 128
  config.num_steps = 14_000  # 30 epochs of Fashion-MNIST
  config.seed = 0
  config.log_every = 200
  config.eval_every = 2000
  config.checkpoint_every = 2000
  return config
