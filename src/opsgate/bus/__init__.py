"""The event bus: in-process or Redis publish/subscribe of domain events."""
