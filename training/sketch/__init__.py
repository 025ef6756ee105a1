"""Sketch-RNN training: data sets from packages (data.py) and the training command (train.py)."""
