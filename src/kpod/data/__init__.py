"""Data sets, teacher rationales, answers and reasoning steps."""
