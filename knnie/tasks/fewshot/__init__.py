"""Few-shot relation extraction (TKRE, issue 14)."""
