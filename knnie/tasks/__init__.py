"""The tasks: relation extraction (re) and named-entity recognition (ner), sharing one training loop."""
