"""ONNX export of the networks and the onnxruntime backend.

- `onnx_export.export_onnx(out_dir, res, weights, opset=17, random_weights=False, ...)`:
  two graphs (`encode_source.onnx`, `drive.onnx`, dynamic batch) and `manifest.json`.
  Needs the optional `onnx` package (`pip install 'f2fcli[export]'`).
- `layout`: the files an export directory holds (light: no torch, no onnx).
- `runtime.OnnxGenerator(model_dir, device, threads)`: `encode_source`/`drive` on numpy
  arrays with onnxruntime sessions; `runtime.resolve_backend("auto", device)` picks the
  faster backend.
- `cache.load_onnx_generator`: exports on first use into the user cache, loads after.
- `weights.build_generator` / `random_generator`: the torch generator to export or time.

Submodules import torch and onnxruntime; import them where needed, not from here.
"""
