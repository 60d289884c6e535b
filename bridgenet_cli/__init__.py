"""BridgeNet toolkit: multi-task dense prediction from one command line."""

__version__ = "0.1.0"
