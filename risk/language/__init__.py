"""Reading the customer's own words: folding, cues, negation, relations, a statement model.

- :mod:`risk.language.fold`: one canonical form of a text (width, case,
  traditional and variant characters).
- :mod:`risk.language.lexicon`: weighted per-typology phrases found with
  their positions, English words tolerant of one typo.
- :mod:`risk.language.reading`: clauses, negation and contrast, who the words
  are about; the result is a :class:`~risk.language.reading.Reading`.
- :mod:`risk.language.model`: a small linear statement classifier over
  character n-grams, trained at build time (``risk.training.train_statements``).

Everything is pure and built once per ruleset.
"""
