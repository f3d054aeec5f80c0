"""Coding sessions: rooms people share, their participants and invites."""
