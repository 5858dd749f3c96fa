"""The HTTP API (FastAPI): thin routes over the service layer in `starter/`; served by `automations dev` and
`automations api`, documented at /docs."""
