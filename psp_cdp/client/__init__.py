"""Layer 7: client libraries."""
