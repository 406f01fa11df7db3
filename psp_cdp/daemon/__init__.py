"""Layer 6: the control API daemon."""
