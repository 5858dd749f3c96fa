# One image for every role of the engine: `automations worker`, `automations api`, `automations migrate`, the CLI.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY workflows workflows
COPY activities activities
COPY models models
COPY starter starter
COPY worker.py ./
RUN pip install --no-cache-dir .
# Never run as root in production; embedded PostgreSQL is not used here (DATABASE_URL points at a server).
RUN useradd --create-home automations
USER automations
ENTRYPOINT ["automations"]
CMD ["worker"]
