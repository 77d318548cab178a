"""The all-in-one demo behind ``radical-orbit demo``."""
