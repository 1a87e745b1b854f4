"""Storage: the contract and its backends."""
