"""Docstrings: definitions under a cursor, chat prompts, summary and explanation cleanup, docstring styles."""
