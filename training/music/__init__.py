"""Training pipeline of the music generator: data (music21 corpus), n-gram baseline, LSTM/transformer training."""
