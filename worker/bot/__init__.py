"""The chat channel: a Matrix bot through which a room subscribes itself (issue 18)."""
