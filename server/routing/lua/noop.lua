-- A script that does nothing: the round-trip floor the benchmark compares with.
-- ARGV: [1] prefix
return 1
