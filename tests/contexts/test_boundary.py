"""The file boundary's one decision (contexts/boundary.py), on a real tree: whose roots count, and how a
client's root URI becomes a path (`..`, percent-escapes, symlinks, other hosts, Windows drive letters)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_mcp.contexts import DeclaredRootOutside, Reader, UnusableRootUri, read_scope
from rlm_mcp.contexts.boundary import path_of_root, within


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "repo").mkdir(parents=True)
    outside.mkdir()
    (allowed / "link-out").symlink_to(outside, target_is_directory=True)
    return allowed.resolve(), outside.resolve()


def test_a_remote_client_root_inside_the_allowed_roots_chooses_what_loads(tree: tuple[Path, Path]) -> None:
    allowed, _ = tree
    scope = read_scope(Reader.REMOTE_CLIENT, [allowed], [(allowed / "repo").as_uri()])
    assert scope.roots == (allowed,)  # never widened
    assert scope.default_sources == (str(allowed / "repo"),)


@pytest.mark.parametrize("spelling", ["{outside}", "{allowed}/../outside", "{allowed}/..%2Foutside",
                                      "{allowed}/%2e%2e/outside", "{allowed}/link-out", "{allowed}/link-out/.."])
def test_a_remote_client_root_outside_is_refused_by_name(tree: tuple[Path, Path], spelling: str) -> None:
    allowed, outside = tree
    uri = "file://" + spelling.format(allowed=allowed, outside=outside)
    with pytest.raises(DeclaredRootOutside) as refused:
        read_scope(Reader.REMOTE_CLIENT, [allowed], [(allowed / "repo").as_uri(), uri])
    message = str(refused.value)
    assert uri in message and "RLM_ALLOWED_ROOTS" in message and str(allowed) in message


def test_a_remote_client_may_not_name_another_host(tree: tuple[Path, Path]) -> None:
    allowed, _ = tree
    with pytest.raises(UnusableRootUri, match="names the host 'fileserver'"):
        read_scope(Reader.REMOTE_CLIENT, [allowed], [f"file://fileserver{allowed}"])


def test_a_remote_client_without_roots_loads_the_allowed_roots(tree: tuple[Path, Path]) -> None:
    allowed, _ = tree
    scope = read_scope(Reader.REMOTE_CLIENT, [allowed], ["https://example.com/not-a-directory"])
    assert scope == read_scope(Reader.REMOTE_CLIENT, [allowed], [])
    assert scope.default_sources == (str(allowed),)


def test_a_local_client_is_trusted_with_its_roots(tree: tuple[Path, Path]) -> None:
    allowed, outside = tree
    scope = read_scope(Reader.LOCAL_CLIENT, [allowed], [outside.as_uri()])
    assert scope.roots == (allowed, outside)
    assert scope.default_sources == (str(outside),)
    assert read_scope(Reader.LOCAL_CLIENT, [allowed], []).default_sources == (str(Path.cwd()),)


def test_the_python_api_allows_the_paths_its_caller_names(tree: tuple[Path, Path]) -> None:
    allowed, outside = tree
    (outside / "notes.txt").write_text("x")
    scope = read_scope(Reader.PYTHON_API, [allowed], [str(outside / "notes.txt")])
    assert scope.roots == (allowed, outside)  # a file's directory
    assert scope.default_sources == (str(outside / "notes.txt"),)


@pytest.mark.parametrize(("uri", "path"), [
    ("file:///C:/Users/ana/repo", "C:\\Users\\ana\\repo"),
    ("file:///c%3A/Program%20Files", "C:\\Program Files"),
    ("file://fileserver/share/repo", "\\\\fileserver\\share\\repo"),
])
def test_windows_spellings_of_a_root(uri: str, path: str) -> None:
    assert path_of_root(uri, strict=True, windows=True) == path


def test_a_windows_drive_letter_uri_read_here_is_no_path_inside_the_roots(tree: tuple[Path, Path]) -> None:
    allowed, _ = tree
    assert path_of_root("file:///C:/Users/ana", strict=True, windows=False) == "/C:/Users/ana"
    with pytest.raises(DeclaredRootOutside, match="C:/Users/ana"):
        read_scope(Reader.REMOTE_CLIENT, [allowed], ["file:///C:/Users/ana"])


def test_within_is_a_path_test_not_a_prefix_test() -> None:
    assert within("/srv/repo/a", "/srv/repo") and within("/srv/repo", "/srv/repo")
    assert not within("/srv/repository", "/srv/repo")
