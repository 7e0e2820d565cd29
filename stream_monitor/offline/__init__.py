"""The offline commands: ``backtest`` (the monitors over a recorded stream) and ``profile``
(a reference profile learnt from a file)."""
