"""OpsGate: a self-hosted governed AI gateway and operations control plane."""

__version__ = "0.1.0"
