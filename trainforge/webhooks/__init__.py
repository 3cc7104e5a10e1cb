"""Webhooks: Standard Webhooks signing, SSRF policy, delivery attempts, backoff schedule and the outbox."""
