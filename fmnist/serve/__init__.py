"""Using a trained model: predict on image files, export to ONNX and TorchScript."""
