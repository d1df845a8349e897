"""tirtasu.simulator"""
