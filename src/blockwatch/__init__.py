"""blockwatch: watch whether news outlets can be reached from inside a country."""

__version__ = "0.1.0"
