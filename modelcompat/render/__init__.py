"""Renderings of a run for people and tools: terminal, markdown, Prefect artifacts, HTML, JUnit.

May import: results, baseline (severity tables); never store writes, execution or orchestration.
"""
