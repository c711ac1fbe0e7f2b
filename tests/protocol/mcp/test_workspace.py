"""File access for the MCP tools stays inside the project root and fails with messages a user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from mochi_mcp.errors import FileUnreadable, PathOutsideProject
from mochi_mcp.workspace import Workspace, language_for


@pytest.fixture
def ws(fixture_project) -> Workspace:
    return Workspace(fixture_project("mcp/shop"))


def test_relative_and_absolute_paths_inside_the_root_are_read(ws: Workspace) -> None:
    rel, text = ws.read_text("shop/pricing.py")
    assert rel == "shop/pricing.py" and "def apply_discount" in text
    rel2, _ = ws.read_text(str(ws.root / "shop" / "pricing.py"))
    assert rel2 == rel


@pytest.mark.parametrize("path", ["../outside.py", "shop/../../outside.py", "/etc/passwd", "~/x.py"])
def test_paths_that_escape_the_root_are_refused(ws: Workspace, path: str) -> None:
    with pytest.raises(PathOutsideProject, match="outside the project root"):
        ws.read_text(path)


def test_a_symlink_pointing_out_of_the_project_is_refused(ws: Workspace, tmp_path: Path) -> None:
    secret = tmp_path / "secret.py"
    secret.write_text("TOKEN = 1\n")
    (ws.root / "shop" / "link.py").symlink_to(secret)
    with pytest.raises(PathOutsideProject):
        ws.read_text("shop/link.py")


def test_missing_binary_folder_and_non_utf8_files_give_clear_errors(ws: Workspace) -> None:
    (ws.root / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    (ws.root / "latin.py").write_bytes("x = 'caf\xe9'\n".encode("latin-1"))
    with pytest.raises(FileUnreadable, match="does not exist"):
        ws.read_text("shop/nope.py")
    with pytest.raises(FileUnreadable, match="binary"):
        ws.read_text("blob.bin")
    with pytest.raises(FileUnreadable, match="not a regular file"):
        ws.read_text("shop")
    with pytest.raises(FileUnreadable, match="not UTF-8"):
        ws.read_text("latin.py")


def test_a_file_without_read_permission_is_reported(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: the suite may run as root, which reads files whatever their mode bits say.
    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(FileUnreadable, match="permission denied"):
        ws.read_text("shop/pricing.py")


def test_languages_come_from_extensions_and_project_modules_from_the_root(ws: Workspace) -> None:
    assert language_for("a/b.py") == "python"
    assert language_for("a/b.tsx") == "tsx"
    assert language_for("README.md") == ""
    assert "shop" in ws.project_modules()
