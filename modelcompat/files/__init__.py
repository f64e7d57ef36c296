"""Reading and writing files safely: atomic replacement, YAML with structural limits. Imports: errors only."""
