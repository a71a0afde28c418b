"""Alerts: who gets one (create), what it says (render), how it goes out (deliver, digest)."""
