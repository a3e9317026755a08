"""The harness: what a conformance verdict is made of.

sizes         the size boundaries where kernels switch code paths, and how far a run reaches
strategies    drawing cases (shapes, asymmetric weights, value regimes, initial states, lengths)
requirements  what a case needs from an adapter, and the gate every adapter call goes through
tolerances    the one tolerance table and its loosenings
compare       elementwise comparison, its report, and the one error/tolerance ratio
results       the result records (one row per property or golden case) and the result file
properties    the conformance properties
engine        the one Hypothesis driver of the properties (the suite and ``check`` use it)
known_issues  documented non-conformances, reported as expected failures
mutants       deliberately broken adapters each property must catch
profiles      the Hypothesis profiles (dev, ci, thorough) and the sizes each reaches

Imports go one way: ``conformance.tools`` and ``conformance.golden`` may import the harness, the
harness never imports them.  ``sizes``, ``tolerances``, ``compare`` and ``results`` import
nothing of Hypothesis, so that ``report``, ``convert`` and ``detect`` run without it.
"""
