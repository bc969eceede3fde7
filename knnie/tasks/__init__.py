"""The tasks: relation extraction (re); more to come."""
