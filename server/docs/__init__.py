"""Docstrings and hover: the definition under the cursor, its summary from the encoder-decoder, the edit."""
