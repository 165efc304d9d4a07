"""Secrets for providers and connectors: envelope encryption with pluggable KEK backends."""
