"""Patch functors: forward rewrites that make a model's blocks fit a forward pattern.

A family spec names its functor as ``"ditkit_cache.functors.<module>:<Class>"``.
"""
