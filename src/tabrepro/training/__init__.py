"""Training: the preprocessor and model factories, the hyper-parameter search, and the ONNX export."""
