"""Batch scoring (`tabrepro score`): raw tables through the packaged ONNX model, in chunks of bounded memory."""
