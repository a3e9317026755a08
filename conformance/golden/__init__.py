"""The golden fixtures: the checked-in cases of ``fixtures/`` (manifest, loading, verifying) and
the recordings of each backend's outputs on them, compared across framework versions (drift).

Imports the harness (tolerances, comparisons, requirements); imported by the suite and the tools.
"""
