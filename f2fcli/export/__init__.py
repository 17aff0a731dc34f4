"""ONNX export of the networks and the onnxruntime backend."""
