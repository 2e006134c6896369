"""The integration API (/api/v1): keys, limits, idempotency (gate), the endpoints (app) and
their declarations, which check requests and make the OpenAPI document (schema)."""
