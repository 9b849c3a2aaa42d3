"""The one invoke service every caller of a function goes through."""
