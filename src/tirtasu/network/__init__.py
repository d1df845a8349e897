"""tirtasu.network"""
