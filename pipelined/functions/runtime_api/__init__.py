"""Runtimes beyond Python: Node.js and `provided` functions run as programs speaking Lambda's Runtime API.

``launch`` (argv and environment), ``worker`` (the daemon's side of one program), ``server`` (its
Runtime API endpoint), ``pool`` (the process pool with programs as workers), ``runtime`` (the Runtime
implementation) and ``node/runtime.mjs`` (the Node.js runtime client pipelined ships). See docs/runtimes.md.
"""
