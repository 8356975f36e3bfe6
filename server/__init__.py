"""plusls.server."""
