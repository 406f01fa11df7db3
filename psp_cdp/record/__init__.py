"""Layer 5: recording input and network traffic, and replaying it."""
