"""Trains a discrete-code autoencoder; see examples/representation/README.md."""

from examples.common import cli
from examples.representation import train

if __name__ == "__main__":
  cli.run(train.train_and_evaluate)
