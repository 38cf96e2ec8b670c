"""API keys and tenancy: keys are stored as SHA-256 hashes; the authorizer turns a key into a Principal."""
