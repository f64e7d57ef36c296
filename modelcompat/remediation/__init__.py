"""`modelcompat remediate`: known transforms tried on a stored run's failing cells, each verified by re-running
the run's cells before it is offered (docs/remediation.md).

Modules: edits (the ONNX/torch rewrites), transforms (which rewrite answers which finding), verify (build the
candidate package, re-run the cells, judge), records (the JSON/markdown report and the fix kept beside the run),
attempt (the whole remediation of one run).

May import: every layer up to orchestration (it re-runs cells the way `modelcompat run` does).
"""
