"""plusls.training."""
