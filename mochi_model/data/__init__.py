"""Training data: FIM formats, filters, by-file split, samples, `mochi prepare`."""
