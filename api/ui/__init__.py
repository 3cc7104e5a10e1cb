"""The web dashboard: server-rendered pages over the public v1 API, live through its SSE streams."""
