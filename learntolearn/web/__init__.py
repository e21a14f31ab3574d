"""``ltl serve``: a local web page for few-shot learning (draw glyphs, drop photos, type texts)."""

from learntolearn.web.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
