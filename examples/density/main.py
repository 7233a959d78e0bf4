"""Trains a Bernoulli VAE; see examples/density/README.md for the commands."""

from examples.common import cli
from examples.density import train

if __name__ == "__main__":
  cli.run(train.train_and_evaluate)
