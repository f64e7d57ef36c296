"""`python -m corpus build|list`: see corpus.registry."""
import sys

from corpus.registry import main

sys.exit(main())
