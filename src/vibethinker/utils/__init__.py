"""Small shared helpers: run logging, RNG state, atomic files, torch runtime settings."""
