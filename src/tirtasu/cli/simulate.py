"""`tirtasu simulate`."""


def simulate():
    """Simulate field data (under construction)."""
