"""CLI tests. A package, so its module names (test_store, test_report, ...) may repeat other test folders' names."""
