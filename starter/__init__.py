"""Everything that starts runs: event intake, the outbox relay, automation management, CLI, dev stack."""
