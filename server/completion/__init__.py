"""Inline completion: prompt from the document (and retrieved snippets), a causal LM with prefix reuse, filters."""
