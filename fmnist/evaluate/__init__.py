"""Evaluation of a trained model on the test split, and the offline HTML report."""
