"""The HTTP API: one Powertools resolver; each capability contributes a router."""
