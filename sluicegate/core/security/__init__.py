"""Access control for the API: API keys, roles, tenants, TLS contexts."""
