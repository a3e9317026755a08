"""The user tools behind ``python -m conformance``: ``check`` and ``detect`` (a user's own LSTM
callable), ``convert`` (weights between frameworks), ``report`` (the conformance matrix and the
regression gate).  They import the harness and the golden store, never the reverse.
"""
