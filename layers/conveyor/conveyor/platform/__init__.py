"""Platform: what every capability stands on (settings, AWS clients, clock, ids, errors, observability, DynamoDB
helpers, HTTP plumbing, API keys). It imports no capability."""
