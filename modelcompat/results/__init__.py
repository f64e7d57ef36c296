"""What a check produces: Outcome, Report, findings; the run summary, verdict and exit codes.

May import: nothing of modelcompat but errors.
"""
