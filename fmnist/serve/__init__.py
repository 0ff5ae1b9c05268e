"""Using a trained model: predict on image files, export to ONNX and TorchScript, and the
registry (release a version as a git tag, load a release by name from anywhere)."""
