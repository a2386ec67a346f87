"""Feature folders: each owns its models, schemas, service, views and tasks."""
