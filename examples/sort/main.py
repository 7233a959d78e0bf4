"""Trains a sorter; see examples/sort/README.md for the commands."""

from examples.common import cli
from examples.sort import train

if __name__ == "__main__":
  cli.run(train.train_and_evaluate)
