"""f2f: one-shot face reenactment (Face2Face^rho) for video batch pipelines."""

import os

# Before NumPy loads (when f2f is imported first): BLAS threads fight the model threads for the
# cores, which made the face-model fit 2-20x slower on small machines. A user's setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
