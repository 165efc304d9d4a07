"""Approval notification and decision channels: Slack, Microsoft Teams, signed webhooks.

Import from the modules (`.notifier`, `.settings`, …): this package file stays empty so that
loading the settings does not load the channels' runtime (SQLAlchemy, the guard, HTTP clients).
"""
