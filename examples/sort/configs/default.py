"""The paper's settings: 10-sort, signum with margin 0.5, dense bridge, γ=10.

Adam at 1e-4 with batch 1024; the authors' demo reached 94.6% all-or-none
test accuracy after about 2,200 passes over 2 million sequences, which is
4.3 million steps of 1024: an accelerator run of days.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.estimator = "dab"  # dab | ste | none | ptrnet
  config.bridge = "dense"  # dense | elementwise
  config.bridge_hidden = (128, 128)
  config.gamma = 10.0
  config.margin = 0.5
  config.length = 10
  config.ptrnet_hidden = 128

  config.learning_rate = 1e-4
  # 0 means: the same rate as the model.
  config.bridge_learning_rate = 0.0
  config.bridge_warmup_steps = 0

  config.batch_size = 1024
  config.num_steps = 4_300_000
  config.seed = 0
  config.log_every = 1000
  config.eval_every = 50_000
  config.checkpoint_every = 50_000
  config.eval_size = 400_000
  config.eval_chunk = 10_000
  return config
