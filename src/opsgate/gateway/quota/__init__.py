"""Quotas for model requests: RPM, TPM, concurrency and spend budgets (docs/quotas.md).

The contract the gateway pipeline codes against (`opsgate.gateway.quota.service`):

    res = await QuotaService.admit(principal, *, model, est_tokens, est_cost) -> Reservation
        Checks and reserves, in one atomic step, every limit of every subject (API key,
        user, listed teams, tenant). Raises RateLimited (detail names the limit,
        retry_after in seconds) having reserved nothing; Unavailable when the Redis
        backend is down and `on_backend_error` is "closed".
    await QuotaService.settle(res, *, tokens_in, tokens_out, cost)
        Corrects TPM and budget to actuals and frees the concurrency slot.
    await QuotaService.release(res)
        The call failed before any usage: refunds the estimates, frees the slot.

settle/release are idempotent and never raise. Backends: memory (one process) and Redis
(replicas). Settings: `QuotaSettings` in `opsgate.gateway.quota.settings`.
"""
