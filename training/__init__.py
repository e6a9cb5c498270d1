"""Training, evaluation, augmentation, hyper-parameter search and ONNX export for the three FER2013 models."""
