"""f2f: one-shot face reenactment (Face2Face^rho) for video batch pipelines."""

__version__ = "0.1.0"
