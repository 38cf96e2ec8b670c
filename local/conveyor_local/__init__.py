"""The local stack (dev only, never deployed): template.yaml's world on one machine, no Docker, no AWS account."""
