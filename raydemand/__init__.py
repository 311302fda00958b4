"""raydemand: Ray-native demand intelligence (forecast, design, basket)."""

__version__ = "0.1.0"
