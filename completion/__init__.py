"""Completion: cursor and context, the one prompt builder, token healing, prefix-reusing generation, filters."""
