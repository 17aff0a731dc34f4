"""`f2f bench`: MACs, latency and memory of the networks and the pipeline."""
