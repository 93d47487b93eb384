"""CTMS pages and API endpoints (registered automatically by etmf.web)."""
