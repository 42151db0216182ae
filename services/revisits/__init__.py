"""The revisits service."""
