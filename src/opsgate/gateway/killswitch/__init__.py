"""Kill switches: platform-wide, per model, per deployment, per API key (docs/quotas.md).

The contract (`opsgate.gateway.killswitch.service.KillSwitches`, on `rt.killswitches`):

    check(*, model, key_id, tenant=None) -> None
        Raises Unavailable (platform or model switched off) or Forbidden (API key), with
        the operator's reason in the message. Memory only, O(1).
    is_killed_deployment(name) -> bool       for routing; memory only, O(1).
    await kill(scope, target, *, actor, reason, tenant=None) -> Switch
    await revive(scope, target, *, actor, reason, tenant=None) -> Switch
        scope: platform | model | deployment | api_key. Writes the database, applies
        locally, publishes `killswitch.changed` (every replica applies it), audits.
"""
