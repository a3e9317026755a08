"""Tests of the harness itself: Hypothesis profile from HYPOTHESIS_PROFILE (dev, ci, thorough)."""

from conformance.harness import profiles as hypothesis_profiles

hypothesis_profiles.load()
