"""Language per turn: the choice hooks share, and the interceptor for an explicit switch."""
