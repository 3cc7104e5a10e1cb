"""Database models, column types and session handling."""
