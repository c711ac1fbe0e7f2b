"""choose_adapters picks the right stack among several installed adapters, and says why."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mochi_core.config import AdapterEntry, MochiConfig
from mochi_model.dist.autodetect import choose_adapters
from mochi_model.dist.errors import AdapterNotFound
from mochi_model.dist.identity import (
    ProjectIdentity,
    configured_base_model,
    git_remote,
    normalise_git_remote,
    same_base_model,
)
from mochi_model.dist.install import install_local
from mochi_model.dist.pack import pack
from tests.unit.model_dist.helpers import BASE, make_adapter

OTHER_BASE = "Qwen/Qwen2.5-Coder-1.5B-Instruct"


def _install(tmp: Path, name: str, version: str, *, role: str = "project", base: str = BASE,
             remote: str = "", project: str = "", base_adapter: dict | None = None) -> None:
    extra = {"base_adapter": base_adapter} if base_adapter else {}
    folder = make_adapter(tmp / "src" / f"{name}-{version}", role=role, base_model=base, extra=extra)
    ident = ProjectIdentity(name=project or name, git_remote=remote)
    install_local(pack(folder, name=name, version=version, out_dir=tmp / "archives", identity=ident), force=True)


@pytest.fixture
def project_root(tmp_path: Path) -> Path:
    root = tmp_path / "work" / "api"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text(
        '[core]\n\tbare = false\n[remote "upstream"]\n\turl = https://github.com/someone/else\n'
        '[remote "origin"]\n\turl = git@github.com:Acme/API.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n'
    )
    return root


@pytest.fixture
def many_installed(tmp_path: Path) -> None:
    _install(tmp_path, "acme-api", "1.0", remote="github.com/acme/api")
    _install(tmp_path, "acme-api", "1.1", remote="github.com/acme/api",
             base_adapter={"name": "team-python", "version": "1.0"})
    _install(tmp_path, "acme-api-15b", "9.0", remote="github.com/acme/api", base=OTHER_BASE)
    _install(tmp_path, "api-by-name", "5.0", project="api")
    _install(tmp_path, "other", "3.0", remote="github.com/other/x")
    _install(tmp_path, "team-python", "1.0", role="base")
    _install(tmp_path, "team-python", "2.0", role="base")
    _install(tmp_path, "team-go", "1.0", role="base", base=OTHER_BASE)


def _summary(chosen) -> list[tuple[str, str, str, float]]:
    return [(c.role, c.name, c.version, c.weight) for c in chosen]


def test_git_remotes_normalise_to_host_and_path() -> None:
    for url in ("git@github.com:Acme/API.git", "https://user:tok@github.com/acme/api/", "ssh://git@github.com:22/acme/api.git"):
        assert normalise_git_remote(url) == "github.com/acme/api"


def test_the_origin_remote_is_read_from_git_config(project_root: Path) -> None:
    assert git_remote(project_root) == "github.com/acme/api"


def test_picks_the_newest_project_adapter_matching_the_git_remote_and_the_base_it_was_trained_on(
    many_installed: None, project_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mochi_model.dist.autodetect"):
        chosen = choose_adapters(MochiConfig(), project_root)
    assert _summary(chosen) == [("base", "team-python", "1.0", 0.3), ("project", "acme-api", "1.1", 0.7)]
    assert "git remote github.com/acme/api" in chosen[1].reason
    assert "trained on it" in chosen[0].reason
    assert "acme-api@1.1" in caplog.text and "team-python@1.0" in caplog.text


def test_without_a_remote_the_configured_project_name_matches(many_installed: None, tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    config = MochiConfig()
    config.project.name = "API"
    chosen = choose_adapters(config, root)
    assert _summary(chosen) == [("base", "team-python", "2.0", 0.3), ("project", "api-by-name", "5.0", 0.7)]


def test_a_lone_base_adapter_gets_weight_one(many_installed: None, tmp_path: Path) -> None:
    root = tmp_path / "unrelated"
    root.mkdir()
    assert _summary(choose_adapters(MochiConfig(), root)) == [("base", "team-python", "2.0", 1.0)]


def test_adapters_for_another_base_model_are_not_chosen(many_installed: None, project_root: Path) -> None:
    config = MochiConfig()
    config.model.path = OTHER_BASE
    assert _summary(choose_adapters(config, project_root)) == [("base", "team-go", "1.0", 0.3),
                                                               ("project", "acme-api-15b", "9.0", 0.7)]


def test_config_pins_win_over_detection_and_keep_their_weights(many_installed: None, project_root: Path) -> None:
    config = MochiConfig()
    config.adapters = [AdapterEntry(name="team-python", version="2.0", role="base", weight=0.5),
                       AdapterEntry(name="acme-api", version="1.0", role="project")]
    chosen = choose_adapters(config, project_root)
    assert _summary(chosen) == [("base", "team-python", "2.0", 0.5), ("project", "acme-api", "1.0", 0.7)]
    assert all("pinned in .mochi/config.toml" in c.reason for c in chosen)


def test_explicit_flags_win_over_pins(many_installed: None, project_root: Path, tmp_path: Path) -> None:
    folder = make_adapter(tmp_path / "my-experiment")
    config = MochiConfig()
    config.adapters = [AdapterEntry(name="acme-api", version="1.0", role="project", weight=0.9)]
    chosen = choose_adapters(config, project_root, base="team-python@2.0", project=str(folder))
    assert _summary(chosen) == [("base", "team-python", "2.0", 0.3), ("project", "my-experiment", "", 0.7)]
    assert chosen[1].path == folder.resolve() and "explicit flag" in chosen[1].reason


def test_a_pin_naming_a_missing_adapter_says_so(project_root: Path) -> None:
    config = MochiConfig()
    config.adapters = [AdapterEntry(name="nope", role="project")]
    with pytest.raises(AdapterNotFound, match="nope is not installed.*config.toml"):
        choose_adapters(config, project_root)


def test_nothing_installed_means_no_adapters(project_root: Path) -> None:
    assert choose_adapters(MochiConfig(), project_root) == []


@pytest.mark.parametrize("other", ["qwen2.5-coder-0.5b", "mlx-community/Qwen2.5-Coder-0.5B-Instruct-4bit",
                                   "/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"])
def test_one_base_model_matches_under_its_preset_name_mlx_repo_and_gguf_file(other: str) -> None:
    assert same_base_model(BASE, other)


@pytest.mark.parametrize("other", ["Qwen/Qwen2.5-Coder-1.5B-Instruct", "Qwen/Qwen2.5-Coder-0.5B", "qwen3-coder", ""])
def test_other_sizes_variants_and_families_do_not_match(other: str) -> None:
    assert not same_base_model(BASE, other)


def test_the_configured_base_model_is_the_presets_canonical_id_unless_a_path_is_set() -> None:
    config = MochiConfig()
    assert configured_base_model(config) == BASE
    config.model.path = "/models/x.gguf"
    assert configured_base_model(config) == "/models/x.gguf"


def test_a_chosen_adapter_unpacks_as_the_path_and_weight_pair_load_engine_takes(
    many_installed: None, project_root: Path
) -> None:
    chosen = choose_adapters(MochiConfig(), project_root)
    pairs = [(path, weight) for path, weight in chosen]
    assert pairs == [(c.path, c.weight) for c in chosen] and len(pairs) == 2


def test_a_bare_name_means_the_installed_adapter_even_when_a_folder_has_that_name(
    many_installed: None, project_root: Path
) -> None:
    (project_root / "team-python").mkdir()  # e.g. a source package folder
    (chosen,) = [c for c in choose_adapters(MochiConfig(), project_root, base="team-python") if c.role == "base"]
    assert (chosen.name, chosen.version) == ("team-python", "2.0")


def test_a_pinned_path_is_relative_to_the_project_root(project_root: Path) -> None:
    make_adapter(project_root / "adapters" / "local", role="project")
    config = MochiConfig()
    config.adapters = [AdapterEntry(path="adapters/local", role="project", weight=0.8)]
    (chosen,) = choose_adapters(config, project_root)
    assert (chosen.path, chosen.weight) == ((project_root / "adapters" / "local").resolve(), 0.8)
