"""Principals: OIDC/JWT users with directory groups, API keys for services and agents."""
