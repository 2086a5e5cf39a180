"""Steps: small idempotent units of host state (plan, apply, revert), their common shapes, the engine that runs
them in order and the journal of what they changed."""
