"""Media files: probing, decoding into timestamped items, and atomic writing (PyAV)."""
