"""Keeping a project adapter up to date: train it further on what changed, keep the old one.

`mochi train project --from-index --output OUT` on a folder that already holds a trained adapter
continues from that adapter instead of starting over. Files in ``OUT`` besides the adapter::

    update.json        what the adapter was trained on: per-file hashes of the train split, hashes of
                       the accepted-suggestion samples, its generation (1 = from scratch, +1 per
                       update), when, and what the last run used (changed files, sample counts)
    history/N/         generation N's adapter, kept when N+1 replaced it (rollback: copy it back);
                       the newest HISTORY_KEEP generations are kept
    .next/             the run in progress (update data set, checkpoint/ for resume); removed on success

:func:`plan_update` compares the freshly prepared ``dataset.json`` with ``update.json``: the update
set is every train sample of new or changed files (and new accepted suggestions) plus a seeded
replay sample of the unchanged files' samples, so the adapter does not forget the rest.
:func:`publish` moves the new adapter into ``OUT`` one rename per file.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mochi_model.adapters.format import CONFIG_FILE, WEIGHTS_FILE, read_adapter
from mochi_model.data.formats import eos_of, get_format
from mochi_model.data.prepare import line_hash
from mochi_model.errors import TrainError
from mochi_model.fim import FimFormat
from mochi_model.training.checkpoint import replace_adapter_files

UPDATE_FILE = "update.json"
HISTORY_DIR = "history"
STAGING_DIR = ".next"
REPORT_FILES = ("training.json", "loss.png")
#: An update keeps its last weights when their validation loss is within 1 % of the lowest seen: a few
#: steps on the new code rarely move a 16-sample validation loss beyond its noise (measured: 5 steps,
#: 2.1613 -> 2.1649), and "no better" kept the old weights, so the update published nothing new.
UPDATE_PREFER_LATER = 0.01
UPDATE_MINUTES = 8.0  # default wall-clock budget of an update (a fresh run: TrainConfig.max_minutes)
DEFAULT_REPLAY = 0.5  # share of an update's samples replayed from unchanged files: as many as changed ones
MIN_REPLAY = 16  # at least this many replay samples when the unchanged files have them
VALID_CHANGED = 8  # changed samples an update validates on (held out of its training), with as many old ones
HISTORY_KEEP = 5  # generations kept in history/ (a 0.5B rank-16 adapter is ~35 MB)


@dataclass(kw_only=True)
class TrainedOn:
    """What an adapter was trained on (``update.json``, or the data folder of an older Mochi)."""

    hashes: dict[str, str]  # train-split file -> content hash
    lines: dict[str, set[str]] = field(default_factory=dict)  # train file -> its line hashes (may be absent)
    accepted: set[str] = field(default_factory=set)  # sample_key of accepted-suggestion samples
    generation: int = 1
    trained_at: str = ""
    installed: str = ""  # NAME@VERSION this generation was installed as
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class UpdatePlan:
    changed: list[str]  # train files whose content changed
    new: list[str]  # train files the adapter never saw
    removed: list[str]  # train files it saw that are gone (or left the train split)
    new_accepted: int
    changed_samples: list[dict[str, Any]]
    replay_samples: list[dict[str, Any]]
    unchanged_lines: int = 0  # samples of changed files whose target lines all were there before

    @property
    def files(self) -> list[str]:
        return sorted(self.changed + self.new)

    @property
    def nothing_to_do(self) -> bool:
        return not self.changed_samples

    def fingerprint(self) -> str:
        """Identifies the update set (a checkpoint in ``.next/`` is resumed only for the same one)."""
        keys = sorted(sample_key(s) for s in self.changed_samples + self.replay_samples)
        return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        return {"changed_files": self.changed, "new_files": self.new, "removed_files": self.removed,
                "new_accepted": self.new_accepted, "changed_samples": len(self.changed_samples),
                "unchanged_lines_samples": self.unchanged_lines,
                "replay_samples": len(self.replay_samples),
                "replay_files": len({s["path"] for s in self.replay_samples})}


def sample_key(sample: dict[str, Any]) -> str:
    return hashlib.sha256(f"{sample['prompt']}\0{sample['completion']}".encode()).hexdigest()[:16]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrainError(f"{path}: cannot read ({exc}); remove it or pass --fresh") from exc
    if not isinstance(data, dict):
        raise TrainError(f"{path}: expected a JSON object; remove it or pass --fresh")
    return data


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON beside ``path`` and rename it over ``path`` (readers never see half a file)."""
    tmp = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp")  # own name per process
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(path)


def is_trained(folder: Path) -> bool:
    """A finished adapter: weights, config and report, and no interrupted run's checkpoint to resume."""
    folder = Path(folder)
    if not all((folder / f).is_file() for f in (WEIGHTS_FILE, CONFIG_FILE, "training.json")):
        return False
    if (folder / "checkpoint" / "state.json").exists():
        return False
    return _read_json(folder / "training.json").get("stopped") != "interrupted"


def read_trained_on(folder: Path, data_dir: Path | None = None) -> TrainedOn | None:
    """``folder/update.json``, else the train hashes of ``data_dir/dataset.json`` (read it *before*
    preparing again: an adapter trained by a Mochi without update.json was trained on that data)."""
    folder = Path(folder)
    if (folder / UPDATE_FILE).is_file():
        raw = _read_json(folder / UPDATE_FILE)
        return TrainedOn(hashes=dict(raw.get("train_hashes") or {}), accepted=set(raw.get("accepted") or []),
                         lines={p: set(v) for p, v in (raw.get("train_lines") or {}).items()},
                         generation=int(raw.get("generation", 1)), trained_at=str(raw.get("trained_at", "")),
                         installed=str(raw.get("installed", "")), raw=raw)
    if data_dir is not None and (Path(data_dir) / "dataset.json").is_file():
        ds = _read_json(Path(data_dir) / "dataset.json")
        accepted = {sample_key(s) for s in _read_jsonl(Path(data_dir) / "train.jsonl") if s.get("kind") == "accepted"}
        when = _dt.datetime.fromtimestamp((folder / "training.json").stat().st_mtime, _dt.UTC)
        return TrainedOn(hashes=_of_train_files(ds, "hashes"), accepted=accepted,
                         lines={p: set(v) for p, v in _of_train_files(ds, "line_hashes").items()},
                         trained_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return None


def _of_train_files(ds: dict[str, Any], key: str) -> dict[str, Any]:
    """``dataset.json``'s per-file ``key`` (``hashes``, ``line_hashes``), train-split files only."""
    train = (ds.get("split_files") or {}).get("train") or []
    per_file = ds.get(key) or {}
    return {p: per_file[p] for p in train if p in per_file}


def target_text(sample: dict[str, Any], fmt: FimFormat | None) -> str:
    """The whole lines a sample is trained to write: its completion, completed on both ends by the rest
    of the cursor's line from the FIM prompt (a span may start or end mid-line)."""
    text = str(sample.get("completion", ""))
    eos = eos_of(fmt) if fmt is not None else ""
    text = text.removesuffix(eos) if eos else text
    prompt = str(sample.get("prompt", ""))
    if fmt is None or not fmt.middle or not prompt.endswith(fmt.middle):
        return text  # not a FIM sample (file, instruct): its completion is all there is
    body = prompt[: -len(fmt.middle)]
    first, second = (fmt.suffix, fmt.prefix) if fmt.order == "spm" else (fmt.prefix, fmt.suffix)
    i = body.rfind(second)
    j = body.rfind(first, 0, i) if i >= 0 else -1
    if i < 0 or j < 0:
        return text
    a, b = body[j + len(first):i], body[i + len(second):]
    before, after = (b, a) if fmt.order == "spm" else (a, b)
    return before.rsplit("\n", 1)[-1] + text + after.split("\n", 1)[0]


def _target_is_old(sample: dict[str, Any], old_lines: set[str], fmt: FimFormat | None) -> bool:
    """Every non-blank line the sample is trained to write was in the file when the adapter was trained."""
    lines = [ln for ln in target_text(sample, fmt).splitlines() if ln.strip()]
    return bool(lines) and all(line_hash(ln) in old_lines for ln in lines)


def plan_update(data_dir: Path, trained: TrainedOn, *, replay: float = DEFAULT_REPLAY, seed: int = 0) -> UpdatePlan:
    """Which train samples of the prepared ``data_dir`` are new since ``trained``, plus the replay sample.

    Args:
        data_dir: a folder `mochi prepare` wrote (``dataset.json`` with per-file hashes, ``train.jsonl``).
        trained: what the adapter was trained on.
        replay: share of the update set drawn from unchanged files (0 = none; default 0.5: as many as
            changed samples, and at least :data:`MIN_REPLAY` when there are that many).
        seed: replay sampling seed (the same changes always give the same update set, so it can resume).

    Raises:
        TrainError: ``replay`` outside [0, 1), or a data folder without hashes.
    """
    if not 0 <= replay < 1:
        raise TrainError(f"--replay must be at least 0 and below 1 (a share of the update's samples), got {replay}")
    ds = _read_json(Path(data_dir) / "dataset.json")
    now = _of_train_files(ds, "hashes")
    if not now:
        raise TrainError(f"{data_dir}/dataset.json lists no train files with hashes; prepare again or pass --fresh")
    old = trained.hashes
    try:
        fmt: FimFormat | None = get_format(str(ds.get("fim_format") or ""))
    except KeyError:
        fmt = None
    changed = sorted(p for p, h in now.items() if p in old and old[p] != h)
    new = sorted(p for p in now if p not in old)
    removed = sorted(p for p in old if p not in now)
    todo = set(changed) | set(new)
    fresh, pool = [], []
    n_accepted = same_lines = 0
    for s in _read_jsonl(Path(data_dir) / "train.jsonl"):
        if s.get("kind") == "accepted":
            is_new = sample_key(s) not in trained.accepted
            n_accepted += is_new
        else:
            is_new = s.get("path") in todo
            # a changed file's sample whose target lines were all there before teaches nothing new
            # (a 2-line edit of a 1,500-line file used to make all of its samples "changed")
            old_lines = trained.lines.get(str(s.get("path")))
            if is_new and s.get("path") in changed and old_lines and _target_is_old(s, old_lines, fmt):
                is_new = False
                same_lines += 1
        (fresh if is_new else pool).append(s)
    want = 0
    if fresh and replay > 0:
        want = max(round(len(fresh) * replay / (1 - replay)), MIN_REPLAY)
    rng = random.Random(f"{seed}:replay:{':'.join(sorted(sample_key(s) for s in fresh))}")
    picked = rng.sample(pool, min(want, len(pool)))
    return UpdatePlan(changed=changed, new=new, removed=removed, new_accepted=n_accepted,
                      changed_samples=fresh, replay_samples=picked, unchanged_lines=same_lines)


def write_update_data(plan: UpdatePlan, data_dir: Path, out: Path, *, seed: int = 0) -> Path:
    """``out/{train,valid}.jsonl`` + ``dataset.json`` for the update.

    Validation must see the changed code, or early stopping keeps the old weights (step 0 is best on a
    valid split that holds none of it): with five or more changed samples, up to :data:`VALID_CHANGED`
    of them (a fifth at most) are held out of training and validated on beside as many samples of the
    valid split (forgetting shows there). With fewer, the valid split as before.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    changed = list(plan.changed_samples)
    rng = random.Random(f"{seed}:update-valid:{len(changed)}")
    k = min(VALID_CHANGED, len(changed) // 5)
    held = set(rng.sample(range(len(changed)), k)) if k else set()
    train = [s for i, s in enumerate(changed) if i not in held] + plan.replay_samples
    with open(out / "train.jsonl", "w", encoding="utf-8") as f:
        for s in train:
            f.write(json.dumps(s) + "\n")
    if held:
        old_valid = _read_jsonl(Path(data_dir) / "valid.jsonl")
        valid = [changed[i] for i in sorted(held)] + rng.sample(old_valid, min(len(old_valid), VALID_CHANGED))
        with open(out / "valid.jsonl", "w", encoding="utf-8") as f:
            for s in valid:
                f.write(json.dumps(s) + "\n")
    else:
        shutil.copyfile(Path(data_dir) / "valid.jsonl", out / "valid.jsonl")
    full = _read_json(Path(data_dir) / "dataset.json")
    splits = dict(full.get("splits") or {})
    splits["train"] = {"files": len({s["path"] for s in train}), "samples": len(train)}
    ds = {k: full.get(k) for k in ("schema", "repo", "fim_format", "style", "seed", "budgets", "dropped_counts")}
    ds.update({"splits": splits, "update": {"from_data": str(data_dir), **plan.summary(),
                                            "changed_held_for_validation": len(held)}})
    write_json(out / "dataset.json", ds)
    return out


def record_trained_on(folder: Path, data_dir: Path, *, generation: int, mode: str,
                      plan: UpdatePlan | None = None, installed: str = "", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``folder/update.json``: the adapter in ``folder`` has now seen ``data_dir``'s train split."""
    accepted = sorted(sample_key(s) for s in _read_jsonl(Path(data_dir) / "train.jsonl") if s.get("kind") == "accepted")
    ds = _read_json(Path(data_dir) / "dataset.json")
    record = {"schema": 1, "generation": generation, "mode": mode,
              "trained_at": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "data": str(data_dir), "train_hashes": _of_train_files(ds, "hashes"),
              "train_lines": _of_train_files(ds, "line_hashes"),
              "accepted": accepted,
              "installed": installed, "last": {**(plan.summary() if plan else {}), **(extra or {})}}
    write_json(Path(folder) / UPDATE_FILE, record)
    return record


def adapter_shape(folder: Path) -> dict[str, Any]:
    """The LoRA shape an update must keep: rank, alpha, targets and num_layers of ``folder``'s adapter."""
    cfg = read_adapter(folder).config
    targets = sorted({k.split(".")[-1] for k in cfg.keys})
    return {"rank": cfg.rank, "alpha": cfg.scale * cfg.rank, "targets": targets, "num_layers": cfg.num_layers,
            "dropout": cfg.dropout, "name": cfg.name}


def publish(staging: Path, output: Path, *, keep_as: str) -> Path | None:
    """Replace ``output``'s adapter by ``staging``'s; the old one is first copied to ``output/history/keep_as``
    (generations older than the newest :data:`HISTORY_KEEP` there are removed).

    Returns:
        The history folder (``None`` when ``output`` held no adapter).
    """
    output, staging = Path(output), Path(staging)
    kept = None
    if (output / WEIGHTS_FILE).is_file():
        kept = output / HISTORY_DIR / keep_as
        if not kept.exists():
            tmp = output / HISTORY_DIR / f".{keep_as}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for name in (WEIGHTS_FILE, CONFIG_FILE, *REPORT_FILES, UPDATE_FILE):
                if (output / name).is_file():
                    shutil.copy2(output / name, tmp / name)
            tmp.rename(kept)
    replace_adapter_files(staging, output, (*REPORT_FILES, UPDATE_FILE))
    generations = sorted((p for p in (output / HISTORY_DIR).glob("*") if p.name.isdigit()), key=lambda p: int(p.name))
    for old in generations[:-HISTORY_KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return kept

