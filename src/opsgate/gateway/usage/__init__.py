"""Usage accounting: one ledger row per model request, and its aggregation (docs/quotas.md).

The contract (`opsgate.gateway.usage.recorder`, on `rt.usage`):

    UsageRecorder.record(UsageRecord(tenant, principal_id, key_id, groups, model,
        deployment, route, tokens_in, tokens_out, cost, latency_ms, status, ts,
        request_id, [provider, operation, stream, trace_id]))
        Non-blocking: queued, inserted in batches. Never pass prompt or response text.

`opsgate.gateway.usage.query.aggregate` serves GET /api/v1/usage.
"""
