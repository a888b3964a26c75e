"""boltir: fine-tune and run transformer-based retrieval models."""
