"""EmotionLens app: face detection and three-model emotion labelling with ONNX Runtime (no torch)."""
