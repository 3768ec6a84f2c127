"""Learning to tune: the :class:`~energycore.learn.tuner.Tuner` and replayable measurements."""
