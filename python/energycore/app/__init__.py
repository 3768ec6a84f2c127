"""App: the ``energycore`` command, the demo and the plots (the top layer)."""
