"""Forms by screen family: validation only, no I/O."""
