"""pointsbot: the domain package of the Discord points bot, shipped as a Lambda layer."""

__version__ = "0.1.0"
