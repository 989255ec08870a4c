"""Measurement: DNS, TCP, TLS and HTTP steps that do I/O and return plain records."""
