"""Evaluation of fighters: who plays (players), seeded matches (matches), round robins and
ratings (compare, ratings), and replays (replay). evaluate.py is the command line and the
`evaluate()` entry point; docs/evaluation.md is the guide.
"""
