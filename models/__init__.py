"""Data layer: SQLModel tables, definition and event schemas, settings and the services that write them."""
