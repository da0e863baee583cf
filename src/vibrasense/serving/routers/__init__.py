"""One router per resource: scoring, machines, models, operations, dashboard."""
