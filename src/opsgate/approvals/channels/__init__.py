"""Approval notification and decision channels: Slack, Microsoft Teams, signed webhooks."""

from opsgate.approvals.channels.base import Channel, DeliveryError
from opsgate.approvals.channels.notifier import ChannelNotifier
from opsgate.approvals.channels.settings import (
    ChannelsSettings,
    SlackChannelSettings,
    SlackUser,
    TeamsChannelSettings,
    WebhookChannelSettings,
)

__all__ = [
    "Channel",
    "ChannelNotifier",
    "ChannelsSettings",
    "DeliveryError",
    "SlackChannelSettings",
    "SlackUser",
    "TeamsChannelSettings",
    "WebhookChannelSettings",
]
