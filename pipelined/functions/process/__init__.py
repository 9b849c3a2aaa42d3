"""Process isolation: each function's handler runs in warm worker processes forked from a zygote.

Only the standard library is imported here and in ``protocol``, ``worker`` and ``zygote``: those modules
run in the zygote, and everything the zygote imports is memory every worker starts with.
See docs/isolation.md.
"""
