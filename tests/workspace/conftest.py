from tests.workspace.gitkit import gitenv

__all__ = ["gitenv"]
