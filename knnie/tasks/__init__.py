"""The tasks: relation extraction (re) and named-entity recognition (ner), sharing one front-class
base (`base.MemoryAugmentedModel`: model directory, memories, kNN, tuning) and one training loop."""
