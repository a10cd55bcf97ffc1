"""Build-time generators for the risk package's committed data files.

Nothing here is imported by the engine at run time; each module regenerates
one data file from its source and a test checks that the committed file is
what the generator produces.
"""
