"""Webhooks: tenants' subscriptions to domain events, delivered signed (Standard Webhooks v1) with retries, a
circuit breaker per endpoint, auto-disable with warnings, and recovery. It listens to every capability's events
(conveyor.platform.events); no capability calls into it, so its public API is small.
"""
