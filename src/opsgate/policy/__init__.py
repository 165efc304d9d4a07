"""Access decisions by Rego policies: embedded regorus or an OPA server."""
