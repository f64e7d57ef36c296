"""Renderings of a run for people and tools: terminal, tables, markdown, Prefect artifacts, HTML, JUnit.

May import: results, matrix, validators (names), planning (plan rows), baseline (severity tables); never store
writes, execution or orchestration.
"""
