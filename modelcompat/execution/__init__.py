"""Running a cell: provision its runtime, share one probe, turn validator outcomes into frozen Reports.

May import: everything below it (errors … planning, probe, validators); never orchestration, flows or cli.
"""
