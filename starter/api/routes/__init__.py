"""One router per resource: automations, runs, event intake, and account/catalog information."""
