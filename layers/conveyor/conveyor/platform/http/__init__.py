"""HTTP edge: the error table, authentication and per-route scopes."""
