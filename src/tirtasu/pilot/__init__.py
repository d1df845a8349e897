"""tirtasu.pilot"""
