"""The append-only, hash-chained, Merkle-checkpointed audit trail every component writes to."""
