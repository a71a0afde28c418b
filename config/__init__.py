"""Configuration: the validated settings, the sources file and the default templates."""
