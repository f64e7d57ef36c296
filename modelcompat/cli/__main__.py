"""`python -m modelcompat.cli`: the same entry point as the `modelcompat` console script."""
from modelcompat.cli import main

main()
