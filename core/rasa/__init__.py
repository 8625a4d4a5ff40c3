"""Rasa 3.x project files: line-aware YAML loading, domain, training data, validation."""
