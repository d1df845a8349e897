"""tirtasu.leaks"""
