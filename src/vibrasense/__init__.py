"""vibrasense: learn what a healthy machine sounds like, flag what does not."""

__version__ = "0.1.0"
