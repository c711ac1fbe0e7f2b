"""`mochi train project --from-index`: a first training, or an update of the adapter OUTPUT already holds.

The update (issue 15 part 3, "an adapter that keeps up"): prepare from the index again (unchanged files
keep their samples), train from the existing adapter's weights on the samples of the train files that
changed since it was trained plus a seeded replay sample of the rest, within a short budget, then
replace the adapter file by file atomically (the old one is copied to OUTPUT/history/N first) and, when
the adapter is installed, install the result as its next version. The logic is in
:mod:`mochi_model.training.update`; this module sequences it and prints what happens.

OUTPUT may also be an installed version folder (``~/.mochi/adapters/NAME/VERSION``): installed folders
are never written; the run works in ``~/.mochi/adapters/NAME/.train`` (hidden from the registry),
seeded from that version, and installs the next version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mochi_model.training.config import TrainConfig

if TYPE_CHECKING:
    from mochi_model.dist.registry import InstalledAdapter
    from mochi_model.training.torch_trainer import TrainResult

_D = TrainConfig()
_SEED_FILES = ("adapter_config.json", "adapters.safetensors", "training.json", "update.json", "loss.png")


def fresh_args(args: dict[str, Any]) -> dict[str, Any]:
    """The ``_train`` arguments of a from-scratch run: unset shape and budget flags take the defaults."""
    defaults = {"rank": _D.rank, "alpha": _D.alpha, "num_layers": _D.num_layers, "minutes": _D.max_minutes}
    return {**args, **{k: v for k, v in defaults.items() if args.get(k) is None}}


def _main_process() -> bool:
    """Under torchrun every process runs the command; only rank 0 writes what follows training."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def record_if_prepared(output: Path, data: Path, res: TrainResult) -> None:
    """After a `--data` run: write OUTPUT/update.json when the data folder has per-file hashes."""
    from mochi_model.training.update import UPDATE_FILE, read_trained_on, record_trained_on

    if not _main_process():
        return

    ds = Path(data) / "dataset.json"
    if res.stopped == "interrupted" or not ds.is_file() or "hashes" not in json.loads(ds.read_text(encoding="utf-8")):
        return
    old = read_trained_on(output) if (Path(output) / UPDATE_FILE).is_file() else None
    record_trained_on(output, data, generation=old.generation + 1 if old else 1, mode="fresh")


@dataclass
class _Target:
    folder: Path  # where the adapter is trained: OUTPUT, or NAME/.train for an installed OUTPUT
    installed: InstalledAdapter | None  # the installed version the result succeeds (when known already)


def _target(output: Path) -> _Target:
    from mochi_core.paths import adapters_home
    from mochi_model.dist.manifest import MANIFEST_NAME, read_manifest
    from mochi_model.dist.registry import InstalledAdapter
    from mochi_model.training.update import STAGING_DIR, UPDATE_FILE, is_trained, write_json

    output = Path(output).expanduser()
    home = adapters_home()
    if not ((output / MANIFEST_NAME).is_file() and output.resolve().parent.parent == home.resolve()):
        return _Target(output, None)
    manifest = read_manifest(output)
    installed = InstalledAdapter(manifest.name, manifest.version, output.resolve(), manifest)
    work = home / manifest.name / ".train"
    rec = work / UPDATE_FILE
    seeded_from = json.loads(rec.read_text(encoding="utf-8")).get("installed") if rec.is_file() else None
    if not is_trained(work) or seeded_from != installed.spec:
        typer.echo(f"{installed.spec} is installed: working in {work} (installed folders are never modified)")
        shutil.rmtree(work / STAGING_DIR, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        for name in _SEED_FILES:
            (work / name).unlink(missing_ok=True)
            if (output / name).is_file():
                shutil.copyfile(output / name, work / name)
        if rec.is_file():  # remember which version the folder holds (a rerun resumes instead of reseeding)
            write_json(rec, {**json.loads(rec.read_text(encoding="utf-8")), "installed": installed.spec})
    return _Target(work, installed)


def _installed_predecessor(folder: Path, installed_spec: str, root: Path) -> InstalledAdapter | None:
    """The newest installed version of this adapter: by the name it was last installed as, else its own
    name, and only a project adapter of this project (a teammate's adapter may share the name)."""
    from mochi_core.config import load_config
    from mochi_model.dist.identity import project_identity
    from mochi_model.dist.install import newest_installed
    from mochi_model.training.update import adapter_shape

    name = installed_spec.partition("@")[0] or adapter_shape(folder)["name"]
    found = newest_installed(name) if name else None
    if found is None:
        return None
    ref = found.manifest.project
    ident = project_identity(load_config(root)[0], root)
    same = ref is not None and ((ref.git_remote and ref.git_remote == ident.git_remote)
                                or ref.name.lower() == ident.name.lower())
    if found.manifest.type != "project" or not same:
        typer.echo(f"not installing: the installed {found.spec} is not this project's adapter "
                   f"(its project: {ref.name if ref else 'none'}); `mochi pack` + `mochi install` it under another name")
        return None
    return found


def _reset_staging(staging: Path, fingerprint: str) -> None:
    """Keep ``.next/`` (and its checkpoint) only when it belongs to the same run, so a rerun resumes it."""
    plan_file = staging / "plan.json"
    if plan_file.is_file() and json.loads(plan_file.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
        return
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    plan_file.write_text(json.dumps({"fingerprint": fingerprint}), encoding="utf-8")


def _list(paths: list[str], most: int = 5) -> str:
    return ", ".join(paths[:most]) + (f", ... ({len(paths) - most} more)" if len(paths) > most else "")


def train_from_index(output: Path, repo: Path, *, fresh: bool, replay: float | None, args: dict[str, Any]) -> None:
    """Prepare from the index into OUTPUT/data, then train, update or retrain (see the module docstring).

    Raises:
        TrainError: OUTPUT holds an adapter but no record of what it was trained on (and no --fresh),
            or the adapter's shape does not fit the flags given.
    """
    from mochi_cli.cmd_train import _train, prepare
    from mochi_model.errors import TrainError
    from mochi_model.training.update import (
        DEFAULT_REPLAY,
        STAGING_DIR,
        UPDATE_MINUTES,
        UPDATE_PREFER_LATER,
        adapter_shape,
        is_trained,
        plan_update,
        publish,
        read_trained_on,
        record_trained_on,
        write_update_data,
    )

    target = _target(output)
    work, data = target.folder, target.folder / "data"
    has_adapter = is_trained(work)
    trained = read_trained_on(work, data) if has_adapter else None  # before prepare rewrites data/
    prepare(output=data, repo=repo, from_index=True)
    if not has_adapter:  # a first training (or the resume of an interrupted one) into OUTPUT, as always
        res = _train(data, work, **fresh_args(args))
        if res.stopped != "interrupted":
            record_trained_on(work, data, generation=1, mode="fresh")
            if target.installed is not None:
                _install_next(work, target.installed)
        return
    if trained is None and not fresh:
        raise TrainError(f"{work} holds an adapter but no record of the files it was trained on (no update.json, "
                         "no data/dataset.json); pass --fresh to retrain it from scratch")
    old_gen = trained.generation if trained else 1
    old_report = json.loads((work / "training.json").read_text(encoding="utf-8"))
    old_cfg = old_report.get("config") or {}
    staging = work / STAGING_DIR
    plan = None
    # the frozen base adapter the old one was trained on top of, unless --base-adapter names another
    inherit = {"base": Path(old_cfg["base_adapter"]), "base_weight": float(old_cfg.get("base_weight", 1.0))} \
        if args["base"] is None and old_cfg.get("base_adapter") else {}
    if fresh:
        train_hashes = json.loads((data / "dataset.json").read_text(encoding="utf-8")).get("hashes") or {}
        fingerprint = "fresh:" + hashlib.sha256(json.dumps(train_hashes, sort_keys=True).encode()).hexdigest()[:16]
        run = fresh_args({**args, **inherit, "name": args["name"] or old_cfg.get("name") or work.name})
        typer.echo(f"fresh: retraining {work} from scratch (generation {old_gen} is kept in history/{old_gen})")
    else:
        assert trained is not None  # (checked above: no record needs --fresh)
        seed = int(json.loads((data / "dataset.json").read_text(encoding="utf-8")).get("seed", 0))
        plan = plan_update(data, trained, replay=DEFAULT_REPLAY if replay is None else replay, seed=seed)
        if plan.nothing_to_do:
            gone = f" ({len(plan.removed)} removed: nothing new to learn)" if plan.removed else ""
            typer.echo(f"nothing changed in the training files since {work} was trained "
                       f"({trained.trained_at or 'earlier'}){gone}; the adapter is up to date")
            return
        fingerprint = plan.fingerprint()
        shape = adapter_shape(work)
        run = {**args, **inherit, "name": args["name"] or shape["name"] or old_cfg.get("name") or work.name,
               "rank": shape["rank"] if args["rank"] is None else args["rank"],
               "alpha": shape["alpha"] if args["alpha"] is None else args["alpha"],
               "num_layers": shape["num_layers"] if args["num_layers"] is None else args["num_layers"],
               "minutes": UPDATE_MINUTES if args["minutes"] is None else args["minutes"],
               "targets": shape["targets"], "dropout": shape["dropout"], "init_adapter": str(work),
               "prefer_later_within": UPDATE_PREFER_LATER}
        n_files = len(plan.files)
        what = f"{n_files} changed file{'s' * (n_files != 1)} ({_list(plan.files)})" if plan.files else "no changed files"
        if plan.new_accepted:
            what += f", {plan.new_accepted} new accepted suggestions"
        if plan.unchanged_lines:
            what += f" ({plan.unchanged_lines} of their samples write only lines the adapter saw: replay pool)"
        typer.echo(f"update: {what}, {len(plan.changed_samples)} new/changed samples + {len(plan.replay_samples)} "
                   f"replay samples, starting from {work} (generation {old_gen}"
                   + (f", {trained.installed}" if trained.installed else "") + f", trained {trained.trained_at or '?'})")
    _reset_staging(staging, fingerprint)
    train_data = write_update_data(plan, data, staging / "data") if plan else data
    res = _train(train_data, staging, **run, final=work)
    if res.stopped == "interrupted":
        typer.echo(f"not published: run the same command to resume (checkpoint in {staging / 'checkpoint'})")
        return
    if not _main_process():
        return
    report = json.loads((staging / "training.json").read_text(encoding="utf-8"))
    n_train = int(report["data"]["train_samples"])
    seen = min(1.0, res.steps * int(run["batch_size"]) * res.world_size / max(1, n_train))
    extra = {"steps": res.steps, "best_step": res.best_step, "first_val_loss": res.first_val_loss,
             "best_val_loss": res.best_val_loss, "samples_seen_share": round(seen, 3), "from_generation": old_gen}
    record_trained_on(staging, data, generation=old_gen + 1, mode="update" if plan else "fresh", plan=plan,
                      installed=trained.installed if trained else "", extra=extra)
    kept = publish(staging, work, keep_as=str(old_gen))
    shutil.rmtree(staging, ignore_errors=True)
    if plan and res.best_step == 0:
        typer.echo("note: no step beat the starting validation loss, so the weights equal the previous adapter's")
    elif plan and res.best_val_loss > res.first_val_loss:
        typer.echo(f"note: step {res.best_step}'s validation loss {res.best_val_loss:.4f} is within "
                   f"{UPDATE_PREFER_LATER:.0%} of the starting {res.first_val_loss:.4f}: the weights that saw the "
                   "changes are kept")
    if seen < 1.0:
        why = "; the time budget ended it: pass --minutes to give it more" if res.stopped == "time" else ""
        typer.echo(f"note: {res.steps} steps covered {seen:.0%} of the {n_train} training samples{why}")
    typer.echo(f"generation {old_gen + 1} in {work}; the previous adapter is kept in {kept}")
    previous = target.installed or _installed_predecessor(work, trained.installed if trained else "", Path(repo).resolve())
    if previous is not None:
        _install_next(work, previous)


def _install_next(work: Path, previous: InstalledAdapter) -> None:
    from mochi_model.dist.install import install_next_version
    from mochi_model.training.update import UPDATE_FILE, write_json

    new = install_next_version(work, previous)
    rec = work / UPDATE_FILE
    write_json(rec, {**json.loads(rec.read_text(encoding="utf-8")), "installed": new.spec})
    typer.echo(f"installed {new.spec} into {new.path} (was {previous.spec}); servers that auto-detect "
               "adapters choose the newest version")
