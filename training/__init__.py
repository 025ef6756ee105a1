"""Training scripts for the studio's embedded default models (`python -m training.<area>.train`)."""
