"""Pitwall's platform API (FastAPI on uvicorn): thin routes over the domain rules; see docs/api.md."""
