"""Evaluation of a trained model on the test split, the data exploration plots, and the
offline HTML report."""
