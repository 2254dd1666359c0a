"""The pure core: reason codes, errors, the trust snapshot type and verify()."""
