"""Few-shot relation extraction (TKRE): relations defined by name, description and K examples each."""
