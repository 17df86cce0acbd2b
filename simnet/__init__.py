"""simnet: a deterministic SimPy network of emulated Tor nodes that runs gotor's client code."""
