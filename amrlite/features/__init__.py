"""Deep item features from raw inputs (optional extras images / text)."""
