"""Trains a sort classifier; see examples/classification/README.md."""

from examples.classification import train
from examples.common import cli

if __name__ == "__main__":
  cli.run(train.train_and_evaluate)
