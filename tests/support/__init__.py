"""Test helpers shared across the suite: real tiny models, package variants, servers, process scans."""
