"""Small helpers shared across mtrec's packages (no TensorFlow, no Keras)."""
