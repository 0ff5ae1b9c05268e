"""Shared utilities every layer may use: errors, atomic writes, output paths, plotting.

Imports nothing else from fmnist, so anything may import it."""
