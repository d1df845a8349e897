"""`tirtasu demo`."""


def demo():
    """Build the pilot utility (under construction)."""
