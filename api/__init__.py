"""The HTTP API: a FastAPI app with one route module per resource (`api.main:app`)."""
