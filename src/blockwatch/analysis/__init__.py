"""Analysis: pure functions from measurements (vantage + control) to verdicts and events."""
