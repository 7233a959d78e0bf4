"""Examples that reproduce the paper's experiments with dabjax."""
