"""Probe, host side: starts the agent (agent/, stdlib-only, run by a cell's interpreter) fresh or forked from a
zygote, talks JSON lines to it, and turns crashes, hangs and OOMs into ProbeError.

May import: errors, settings. The agent itself imports nothing of modelcompat.
"""
