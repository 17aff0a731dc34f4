"""Training the networks: dataset preparation, losses, the training loop, evaluation."""
