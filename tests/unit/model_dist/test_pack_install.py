"""pack → install → list → uninstall on real files, with the manifest checked field by field."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from mochi_core.paths import adapters_home
from mochi_model.dist.errors import AdapterNotFound, BaseModelMismatch, DistError
from mochi_model.dist.identity import ProjectIdentity
from mochi_model.dist.install import install_local
from mochi_model.dist.manifest import SCHEMA_VERSION, parse_manifest
from mochi_model.dist.pack import pack, sha256_file
from mochi_model.dist.registry import list_installed, resolve, uninstall
from tests.unit.model_dist.helpers import BASE, make_adapter

IDENT = ProjectIdentity(name="acme-api", git_remote="github.com/acme/api")


@pytest.fixture
def adapter(tmp_path: Path) -> Path:
    folder = make_adapter(tmp_path / "run" / "final")
    (folder / "training.json").write_text(json.dumps({"best_step": 40, "samples": 120, "losses": list(range(500))}))
    (folder / "eval.json").write_text(json.dumps({"exact_match": {"base": 0.1, "adapter": 0.2}}))
    (folder / "0000100_adapters.safetensors").write_bytes(b"intermediate checkpoint")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "step-10.safetensors").write_bytes(b"old")
    return folder


def test_pack_writes_final_weights_reports_and_a_manifest_with_checksums(adapter: Path, tmp_path: Path) -> None:
    archive = pack(adapter, name="acme-api", version="1.2.0", out_dir=tmp_path / "out", identity=IDENT,
                   languages=["python"])
    assert archive.name == "acme-api-1.2.0.mochi.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = parse_manifest(tar.extractfile("manifest.json").read())
    assert names[0] == "manifest.json"
    assert sorted(names) == ["adapter_config.json", "adapters.safetensors", "eval.json", "manifest.json",
                             "training.json"]
    assert manifest.schema_version == SCHEMA_VERSION
    assert (manifest.name, manifest.version, manifest.type) == ("acme-api", "1.2.0", "project")
    assert manifest.base_model_id == BASE
    assert manifest.lora["lora_parameters"]["rank"] == 4
    assert manifest.project.git_remote == "github.com/acme/api"
    assert manifest.languages == ["python"]
    assert manifest.eval["exact_match"]["adapter"] == 0.2
    assert manifest.training["best_step"] == 40 and "losses" not in manifest.training
    assert manifest.created_at.endswith("Z") and manifest.mochi_version
    weights = manifest.file("adapters.safetensors")
    assert weights.sha256 == sha256_file(adapter / "adapters.safetensors")
    assert weights.size == (adapter / "adapters.safetensors").stat().st_size


def test_installed_adapter_has_the_same_bytes_and_is_listed(adapter: Path, tmp_path: Path) -> None:
    archive = pack(adapter, name="acme-api", version="1.0", out_dir=tmp_path, identity=IDENT)
    installed = install_local(archive, expected_base_model="qwen2.5-coder-0.5b")
    assert installed.path == adapters_home() / "acme-api" / "1.0"
    for name in ("adapters.safetensors", "training.json", "eval.json"):
        assert (installed.path / name).read_bytes() == (adapter / name).read_bytes()
    config = json.loads((installed.path / "adapter_config.json").read_text())
    assert config == {**json.loads((adapter / "adapter_config.json").read_text()), "name": "acme-api", "version": "1.0"}
    assert not (installed.path / "0000100_adapters.safetensors").exists()
    assert [a.spec for a in list_installed()] == ["acme-api@1.0"]
    assert not [p for p in adapters_home().iterdir() if p.name.startswith(".")], "temporary folder left behind"


def test_newest_version_resolves_and_uninstall_removes_one_or_all(adapter: Path, tmp_path: Path) -> None:
    for version in ("1.9", "1.10", "1.2"):
        install_local(pack(adapter, name="acme-api", version=version, out_dir=tmp_path, identity=IDENT))
    assert resolve("acme-api").version == "1.10"
    assert resolve("acme-api@1.2").version == "1.2"
    assert [a.spec for a in uninstall("acme-api@1.10")] == ["acme-api@1.10"]
    assert resolve("acme-api").version == "1.9"
    uninstall("acme-api")
    assert list_installed() == [] and not (adapters_home() / "acme-api").exists()
    with pytest.raises(AdapterNotFound, match="mochi list"):
        resolve("acme-api")


def test_a_different_base_model_is_refused_unless_forced(adapter: Path, tmp_path: Path) -> None:
    archive = pack(adapter, name="acme-api", version="1.0", out_dir=tmp_path, identity=IDENT)
    with pytest.raises(BaseModelMismatch, match=r"trained for base model .*Qwen2.5-Coder-0.5B-Instruct.*--force"):
        install_local(archive, expected_base_model="Qwen/Qwen2.5-Coder-1.5B-Instruct")
    assert list(adapters_home().iterdir()) == []
    installed = install_local(archive, expected_base_model="Qwen/Qwen2.5-Coder-1.5B-Instruct", force=True)
    assert installed.path.is_dir()


def test_reinstalling_a_version_needs_force_and_replaces_it(adapter: Path, tmp_path: Path) -> None:
    first = pack(adapter, name="acme-api", version="1.0", out_dir=tmp_path / "a", identity=IDENT)
    install_local(first)
    with pytest.raises(DistError, match="already installed.*--force"):
        install_local(first)
    make_adapter(adapter, seed=7)
    second = pack(adapter, name="acme-api", version="1.0", out_dir=tmp_path / "b", identity=IDENT)
    installed = install_local(second, force=True)
    assert (installed.path / "adapters.safetensors").read_bytes() == (adapter / "adapters.safetensors").read_bytes()


def test_an_unpacked_adapter_folder_on_a_shared_drive_installs(adapter: Path, tmp_path: Path) -> None:
    archive = pack(adapter, name="acme-api", version="2.0", out_dir=tmp_path, identity=IDENT)
    shared = tmp_path / "share" / "acme-api"
    shared.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(shared, filter="data")
    assert install_local(shared).spec == "acme-api@2.0"


def test_packing_a_folder_without_final_weights_says_what_is_missing(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(DistError, match="no adapter_config.json"):
        pack(folder, name="x", version="1")


def test_packing_refuses_names_that_are_not_safe_folder_names(adapter: Path, tmp_path: Path) -> None:
    with pytest.raises(DistError, match="invalid adapter name"):
        pack(adapter, name="../x", version="1", out_dir=tmp_path)


def test_a_peft_folder_is_converted_to_the_shared_layout_when_packed(tmp_path: Path) -> None:
    from mochi_model.adapters.format import export_peft, read_adapter

    original = read_adapter(make_adapter(tmp_path / "mlx-layout"))
    peft_dir = export_peft(original, tmp_path / "peft")
    assert not (peft_dir / "adapters.safetensors").exists()
    installed = install_local(pack(peft_dir, name="from-peft", version="1", out_dir=tmp_path, identity=IDENT))
    loaded = read_adapter(installed.path)
    assert loaded.config.name == "from-peft"
    for module, pair in original.modules.items():
        assert (loaded.modules[module].a == pair.a).all() and (loaded.modules[module].b == pair.b).all()


def test_temporary_folders_of_killed_installs_are_cleaned_up_after_a_day(adapter: Path, tmp_path: Path) -> None:
    import os

    home = adapters_home()
    stale, fresh = home / ".tmp-install-old", home / ".tmp-install-running"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
    os.utime(stale, (0, 0))
    install_local(pack(adapter, name="acme-api", version="1.0", out_dir=tmp_path, identity=IDENT))
    assert not stale.exists() and fresh.exists()


def test_the_base_adapter_a_project_adapter_was_trained_on_is_recorded(adapter: Path, tmp_path: Path) -> None:
    base = install_local(pack(make_adapter(tmp_path / "base", role="base"), name="team-python", version="3.1",
                              out_dir=tmp_path))
    (adapter / "training.json").write_text(json.dumps({"config": {"base_adapter": str(base.path), "base_weight": 0.3}}))
    archive = pack(adapter, name="acme-api", version="1.0", out_dir=tmp_path, identity=IDENT)
    with tarfile.open(archive) as tar:
        manifest = parse_manifest(tar.extractfile("manifest.json").read())
    assert manifest.base_adapter == {"name": "team-python", "version": "3.1", "weight": "0.3"}
