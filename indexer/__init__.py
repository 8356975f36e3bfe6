"""plusls.indexer."""
