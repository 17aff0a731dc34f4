"""The Face2Face^rho networks (paper §3.2-3.4).

- `landmark_images`: keypoints -> sketch images at 1/16, 1/8, 1/4 of the output size
- `blocks`, `spade`: conv/BN/inverted-residual blocks, pose encoder and SPADE
- `motion`: coarse-to-fine motion module F1 -> F2 -> F3
- `rendering`: u-shaped encoder-decoder with warped skips and pose injection
- `generator`: `Generator.encode_source` (once per source) and `.drive` (per frame)
- `checkpoints`: our safetensors weights, import of the official release
- `macs`: MAC counts per module with `torch.utils.flop_counter`

Submodules import torch; import them where needed, not from here.
"""
