"""CLI for training and evaluation: `mochi prepare`, `mochi train base|project`, `mochi eval`.

Thin edge over :mod:`mochi_model.data`, :mod:`mochi_model.training` and :mod:`mochi_model.eval`.
The torch trainer runs data-parallel when started by a launcher, e.g.
``torchrun --nproc-per-node 2 -m mochi_cli.app train project --data D --output O``.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mochi_cli.adapter_opts import parse_adapter_options
from mochi_cli.project_arg import ProjectArg, ProjectOpt, project_root
from mochi_model.fim import DEFAULT_CONTEXT_FORMAT
from mochi_model.training.config import TrainConfig

if TYPE_CHECKING:
    from mochi_model.training.torch_trainer import TrainResult

train_app = typer.Typer(help="Train LoRA adapters (project or base).", no_args_is_help=True)
_D = TrainConfig()  # the CLI's training defaults are the config's (chosen by bench/train_bench.py --sweep)


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.command("prepare")(prepare)
    app.add_typer(train_app, name="train")
    app.command("eval")(eval_cmd)


def _project(repo: Path) -> tuple[Path, object]:
    from mochi_core.config import load_config

    root = repo.resolve()
    cfg, _ = load_config(root)
    return root, cfg


def prepare(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for train/valid JSONL + dataset.json.")],
    folder: ProjectArg = None,
    project: ProjectOpt = None,
    repo: Annotated[Path | None, typer.Option("--repo", hidden=True, help="Old name of --project.")] = None,
    from_index: Annotated[bool, typer.Option("--from-index", help="Take files from the project's index.")] = False,
    subdir: Annotated[str, typer.Option(help="Only files under this folder of the repo.")] = "",
    fim_format: Annotated[str, typer.Option("--format", help="FIM format: qwen, starcoder2, deepseek, codellama, ...")] = "qwen",
    style: Annotated[str, typer.Option(help="Cross-file context layout: comment (what completions use) | repo.")] = DEFAULT_CONTEXT_FORMAT,
    seed: Annotated[int, typer.Option(help="Split/sampling seed.")] = 0,
    prefix_tokens: Annotated[int, typer.Option(help="Prefix budget per sample.")] = 320,
    suffix_tokens: Annotated[int, typer.Option(help="Suffix budget per sample.")] = 64,
    context_tokens: Annotated[int, typer.Option(help="Retrieved-context budget per sample.")] = 320,
    file_chunks: Annotated[int, typer.Option(help="Chars per whole-file sample (0 = none).")] = 1600,
    loss_filter: Annotated[bool, typer.Option("--loss-filter", help="Score each file with the base model and drop "
                                              "the trivially predictable and the hopelessly noisy (Refact-style).")] = False,
    loss_low: Annotated[float, typer.Option(help="--loss-filter: drop files below this mean loss (nats/token).")] = 0.15,
    loss_high: Annotated[float, typer.Option(help="--loss-filter: drop files above this mean loss.")] = 4.0,
    model: Annotated[str, typer.Option(help="--loss-filter: base model (default: configured preset).")] = "",
) -> None:
    """Build training data (FIM, next-line, span, file, instruction samples; split by file)."""
    from mochi_core.config import CompletionSection
    from mochi_core.paths import usage_dir
    from mochi_model.data.prepare import PrepareOptions, collect_files, files_from_index
    from mochi_model.data.prepare import prepare as run_prepare
    from mochi_model.data.samples import SampleOptions

    root, cfg = _project(project_root(folder, project if project is not None else repo))
    files = files_from_index(root) if from_index else collect_files(root, subdir)
    scorer = None
    if loss_filter:
        from mochi_model.backends import load_backend, resolve_backend_name
        from mochi_model.data.loss_score import loss_scorer
        from mochi_model.sources import resolve_model

        name = resolve_backend_name(cfg.model.backend if cfg.model.backend != "remote" else "auto")
        source = resolve_model(model or cfg.model.path or None, preset=cfg.model.preset, backend=name)
        typer.echo(f"loss filter: scoring files with {source.describe()}", err=True)
        scorer = loss_scorer(load_backend(name, source, device=cfg.model.device, dtype=cfg.model.dtype))
    prev_file = output / "dataset.json"
    previous = json.loads(prev_file.read_text(encoding="utf-8")) if from_index and prev_file.exists() else None
    opts = PrepareOptions(fim_format=fim_format, style=style, seed=seed,
                          budgets=CompletionSection(prefix_tokens=prefix_tokens, suffix_tokens=suffix_tokens,
                                                    context_tokens=context_tokens),
                          samples=SampleOptions(file_chunk_chars=file_chunks),
                          loss_score=scorer, loss_low=loss_low, loss_high=loss_high,
                          usage_log=usage_dir(root) / "events.jsonl")
    summary = run_prepare(files, output, options=opts, repo_name=root.name, previous=previous)
    for split, info in summary["splits"].items():
        typer.echo(f"{split:5s}  files {info['files']:4d}  " + (
            f"samples {info['samples']:6d}  ~tokens {info['tokens_approx']:8d}  {info['by_kind']}" if "samples" in info else "(held out for mochi eval)"))
    if summary["dropped_counts"]:
        typer.echo(f"dropped: {summary['dropped_counts']}")
    typer.echo(f"wrote {output}/dataset.json")


def _train(data: Path, output: Path, *, model: str, role: str, name: str, base: Path | None, base_weight: float,
           rank: int, alpha: float, lr: float, batch_size: int, max_steps: int, epochs: float, minutes: float,
           eval_every: int, num_layers: int, dtype: str, resume: bool, backend: str = "torch",
           max_seq_len: int = _D.max_seq_len, grad_checkpointing: bool = _D.grad_checkpointing,
           started_at: float | None = None, init_adapter: str = "", targets: list[str] | None = None,
           dropout: float = _D.dropout, final: Path | None = None,
           prefer_later_within: float = _D.prefer_later_within) -> TrainResult:
    """Train into ``output``; ``final`` is the folder the adapter ends up in (shown in the summary line)."""
    from mochi_core.config import MochiConfig
    from mochi_model.sources import convert_gguf, resolve_model
    from mochi_model.training.torch_trainer import train_lora

    src = resolve_model(model or MochiConfig().model.path or None, preset=MochiConfig().model.preset, backend=backend)
    if src.is_gguf:  # de-quantize once into the cached HF folder the engine uses too (~60 s, later loads ~3 s)
        src = convert_gguf(src)
    cfg = TrainConfig(rank=rank, alpha=alpha, lr=lr, batch_size=batch_size, max_steps=max_steps, epochs=epochs,
                      max_minutes=minutes, eval_every=eval_every, num_layers=num_layers, dtype=dtype, role=role,
                      name=name or output.name, base_adapter=str(base or ""), base_weight=base_weight,
                      max_seq_len=max_seq_len, grad_checkpointing=grad_checkpointing, init_adapter=init_adapter,
                      targets=list(targets or _D.targets), dropout=dropout, prefer_later_within=prefer_later_within)
    if backend == "mlx":
        from mochi_model.training.mlx_trainer import train_lora_mlx

        res = train_lora_mlx(src.path, data, output, cfg, resume=resume)
    else:
        res = train_lora(src.path, data, output, cfg, resume=resume, model_id=src.model_id, started_at=started_at)
    peak = res.memory.get("peak_rss_mb")
    typer.echo(f"{res.stopped}: {res.steps} steps, best step {res.best_step}, val loss {res.first_val_loss:.4f} -> "
               f"{res.best_val_loss:.4f}, {res.tokens_per_s:.0f} tok/s"
               + (f", peak memory {peak / 1024:.1f} GB" if peak else "") + f"; adapter in {final or output}")
    return res


_opts = {
    "model": typer.Option(help="Base model: HF folder, .gguf or hub id (default: configured preset)."),
    "rank": typer.Option(help="LoRA rank."), "alpha": typer.Option(help="LoRA alpha (scale = alpha/rank)."),
    "lr": typer.Option(help="Peak learning rate."), "batch_size": typer.Option(help="Samples per step."),
    "max_steps": typer.Option(help="Most optimizer steps (steps scale with data up to this)."),
    "epochs": typer.Option(help="Passes over the data (the time budget usually ends the run first)."),
    "minutes": typer.Option(help="Wall-clock budget of the whole run, model load and save included (0 = none)."),
    "eval_every": typer.Option(help="Validate every N steps and at the end (one due under N/2 steps before the end is left to the last)."),
    "num_layers": typer.Option(help="Adapt the last N layers (-1 = all)."),
    "dtype": typer.Option(help="auto | float32 | bfloat16"),
    "max_seq_len": typer.Option(help="Skip samples longer than this many tokens (bounds memory)."),
    "grad_checkpointing": typer.Option(help="Recompute activations in backward: less memory, slower."),
    "resume": typer.Option(help="Continue from OUTPUT/checkpoint when present."),
}


@train_app.command("project")
def train_project(
    output: Annotated[Path, typer.Option("--output", "-o", help="Adapter folder to write (or to update: see --from-index).")],
    data: Annotated[Path | None, typer.Option(help="Folder from `mochi prepare`.")] = None,
    from_index: Annotated[bool, typer.Option("--from-index", help="Prepare from the project's index first (into OUTPUT/data); "
                                             "when OUTPUT holds a trained adapter, update it on what changed since.")] = False,
    repo: Annotated[Path, typer.Option("--project", "-p", "--repo", help="Project root (with --from-index).")] = Path("."),
    base: Annotated[Path | None, typer.Option("--base-adapter", "--base", help="Frozen base adapter folder to train on top of "
                                              "(an update keeps the one the adapter was trained on).")] = None,
    base_weight: Annotated[float, typer.Option(help="Stack weight of the base adapter.")] = 1.0,
    name: Annotated[str, typer.Option(help="Adapter name.")] = "",
    model: Annotated[str, _opts["model"]] = "",
    rank: Annotated[int | None, typer.Option(help="LoRA rank (default 16; an update keeps the adapter's).")] = None,
    alpha: Annotated[float | None, typer.Option(help="LoRA alpha, scale = alpha/rank (default 32; an update keeps the adapter's).")] = None,
    lr: Annotated[float, _opts["lr"]] = 2e-4,
    batch_size: Annotated[int, _opts["batch_size"]] = _D.batch_size,
    max_steps: Annotated[int, _opts["max_steps"]] = _D.max_steps, epochs: Annotated[float, _opts["epochs"]] = _D.epochs,
    minutes: Annotated[float | None, typer.Option(help=f"Wall-clock budget of the whole run, model load and save included "
                                                  f"(default {_D.max_minutes:g}, an update 8; 0 = none).")] = None,
    eval_every: Annotated[int, _opts["eval_every"]] = _D.eval_every,
    num_layers: Annotated[int | None, typer.Option(help=f"Adapt the last N layers, -1 = all (default {_D.num_layers}; "
                                                   "an update keeps the adapter's).")] = None,
    max_seq_len: Annotated[int, _opts["max_seq_len"]] = _D.max_seq_len,
    grad_checkpointing: Annotated[bool, _opts["grad_checkpointing"]] = _D.grad_checkpointing,
    dtype: Annotated[str, _opts["dtype"]] = _D.dtype, resume: Annotated[bool, _opts["resume"]] = True,
    backend: Annotated[str, typer.Option(help="torch | mlx (mlx-lm tuner, in-process).")] = "torch",
    fresh: Annotated[bool, typer.Option("--fresh", help="With --from-index: retrain from scratch even when OUTPUT holds an "
                                        "adapter (the old one is kept in OUTPUT/history/).")] = False,
    replay: Annotated[float | None, typer.Option(help="Update: share of its samples replayed from unchanged files "
                                                 "(default 0.5: as many as changed ones, at least 16; 0 = none).")] = None,
) -> None:
    """Train the project adapter (optionally on top of a frozen base adapter) within a time budget.

    With --from-index and an OUTPUT that already holds a trained adapter, continue from it on the files
    that changed since (plus a replay sample of the rest), keep the old one in OUTPUT/history/, and install
    the result as the next version when the adapter is installed.
    """
    started = time.monotonic()
    args = dict(model=model, role="project", name=name, base=base, base_weight=base_weight, rank=rank, alpha=alpha,
                lr=lr, batch_size=batch_size, max_steps=max_steps, epochs=epochs, minutes=minutes,
                eval_every=eval_every, num_layers=num_layers, dtype=dtype, resume=resume, backend=backend,
                max_seq_len=max_seq_len, grad_checkpointing=grad_checkpointing, started_at=started)
    if data is None:
        if not from_index:
            raise typer.BadParameter("pass --data DIR (from `mochi prepare`) or --from-index")
        from mochi_cli.train_update import train_from_index

        train_from_index(output, repo, fresh=fresh, replay=replay, args=args)
        return
    if fresh or replay is not None:
        raise typer.BadParameter("--fresh and --replay apply to --from-index (a --data run always starts from scratch)")
    from mochi_cli.train_update import fresh_args, record_if_prepared

    res = _train(data, output, **fresh_args(args))
    record_if_prepared(output, data, res)


@train_app.command("base")
def train_base(
    output: Annotated[Path, typer.Option("--output", "-o", help="Adapter folder to write.")],
    repos: Annotated[list[Path], typer.Option("--repos", help="Repositories to learn common patterns from.")],
    name: Annotated[str, typer.Option(help="Adapter name.")] = "",
    model: Annotated[str, _opts["model"]] = "", rank: Annotated[int, _opts["rank"]] = 16,
    alpha: Annotated[float, _opts["alpha"]] = 32.0, lr: Annotated[float, _opts["lr"]] = 2e-4,
    batch_size: Annotated[int, _opts["batch_size"]] = _D.batch_size,
    max_steps: Annotated[int, _opts["max_steps"]] = _D.max_steps, epochs: Annotated[float, _opts["epochs"]] = _D.epochs,
    minutes: Annotated[float, _opts["minutes"]] = _D.max_minutes,
    eval_every: Annotated[int, _opts["eval_every"]] = _D.eval_every,
    num_layers: Annotated[int, _opts["num_layers"]] = _D.num_layers,
    max_seq_len: Annotated[int, _opts["max_seq_len"]] = _D.max_seq_len,
    grad_checkpointing: Annotated[bool, _opts["grad_checkpointing"]] = _D.grad_checkpointing,
    dtype: Annotated[str, _opts["dtype"]] = _D.dtype, resume: Annotated[bool, _opts["resume"]] = True,
) -> None:
    """Train one base adapter over several repositories (a team's or a language's patterns)."""
    started = time.monotonic()
    from mochi_model.data.prepare import merge_datasets

    parts = []
    for r in repos:
        part = output / "data" / r.resolve().name
        prepare(output=part, repo=r)
        parts.append(part)
    data = merge_datasets(parts, output / "data" / "_all")
    _train(data, output, model=model, role="base", name=name, base=None, base_weight=1.0, rank=rank, alpha=alpha,
           lr=lr, batch_size=batch_size, max_steps=max_steps, epochs=epochs, minutes=minutes, eval_every=eval_every,
           num_layers=num_layers, dtype=dtype, resume=resume, max_seq_len=max_seq_len,
           grad_checkpointing=grad_checkpointing, started_at=started)


def eval_cmd(
    project_pos: ProjectArg = None,
    project: ProjectOpt = None,
    repo: Annotated[Path | None, typer.Option("--repo", hidden=True, help="Old name of --project.")] = None,
    data: Annotated[Path | None, typer.Option(help="`mochi prepare` folder: its held-out test files are scored.")] = None,
    adapter: Annotated[list[str] | None, typer.Option(help="Adapter folder or installed NAME[@VERSION], with :WEIGHT (repeatable; each gets its own row, the weighted stack another; default: the project's configured stack).")] = None,
    model: Annotated[str, _opts["model"]] = "",
    backend: Annotated[str, typer.Option(help="auto | torch | mlx | remote (default: [model] backend).")] = "",
    compare_model: Annotated[str, typer.Option("--compare-model", help="A plain model (preset, folder or .gguf) scored on the same holes, with and without retrieval.")] = "",
    holes: Annotated[int, typer.Option(help="Holes per kind.")] = 300,
    kinds: Annotated[str, typer.Option(help="Hole kinds, comma-separated: next_line, span, cross_file (next-line holes that need a name from another file).")] = "next_line,span",
    rows: Annotated[str, typer.Option(help="Only these rows, comma-separated (base, retrieval, adapter, stack, both, compare).")] = "",
    subdir: Annotated[str, typer.Option(help="Only score held-out files under this folder.")] = "",
    changed_since: Annotated[Path | None, typer.Option("--changed-since", help="An older copy of the project (a previous release or checkout): only score the held-out files that are new or changed since (how an adapter update is measured).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for eval.json, holes.jsonl, eval.png (and the eval index).")] = Path("mochi-eval"),
    resume: Annotated[bool, typer.Option(help="Continue from OUTPUT/holes.jsonl (same holes): finished rows are reused, a stopped row goes on from its last hole.")] = False,
    seed: Annotated[int, typer.Option(help="Hole sampling seed.")] = 0,
    label: Annotated[str, typer.Option(help="Repository name and version shown in the output.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON summary instead of the table.")] = False,
    sweep_weights: Annotated[bool, typer.Option("--sweep-weights", help="Choose the stack's weights on the validation files first (a grid; needs two or more adapters) and score them as the stack@best row.")] = False,
    sweep_grid: Annotated[str, typer.Option(help="--sweep-weights: the values each adapter's weight takes, comma-separated.")] = "0,0.5,1",
    sweep_holes: Annotated[int, typer.Option(help="--sweep-weights: next-line holes over the validation files.")] = 60,
    write_config: Annotated[bool, typer.Option("--write-config", help="--sweep-weights: write the chosen weights into .mochi/config.toml (the old file is kept as .bak).")] = False,
) -> None:
    """Score held-out files through the completion pipeline users get: base, +retrieval, each adapter,
    the stack, both, and optionally a larger plain model (EM/ES per hole category, paired 95% CIs)."""
    from mochi_core.config import load_config
    from mochi_model.eval.run import EvalOptions, evaluate_repo
    from mochi_model.loader import load_engine

    root = project_root(project_pos, project if project is not None else repo)
    cfg, _ = load_config(root, strict=True)
    ads = parse_adapter_options(adapter, root)  # None: the configured stack
    sweep = None  # checked before any model loads
    if sweep_weights:
        from mochi_model.eval.sweep import SweepOptions

        try:
            grid = tuple(float(g) for g in sweep_grid.split(",") if g.strip())
        except ValueError as exc:
            raise typer.BadParameter(f"not a list of numbers: {sweep_grid!r}", param_hint="--sweep-grid") from exc
        sweep = SweepOptions(grid=grid, holes=sweep_holes, write_config=write_config)
    elif write_config:
        raise typer.BadParameter("--write-config writes the weights chosen by --sweep-weights; add --sweep-weights")
    if changed_since is not None and not changed_since.is_dir():  # before any model loads
        raise typer.BadParameter(f"{changed_since} is not a folder (give an older copy of the project)",
                                 param_hint="--changed-since")
    engine = load_engine(cfg, root, adapters=ads, backend=backend or None, model=model or None)
    compare = None
    if compare_model:
        from mochi_model.presets import PRESETS

        ccfg = copy.deepcopy(cfg)
        if compare_model in PRESETS:
            ccfg.model.preset, ccfg.model.path = compare_model, ""
        else:
            ccfg.model.path = compare_model
        compare = load_engine(ccfg, root, adapters=[], backend=backend or None)
    opts = EvalOptions(holes=holes, kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()), seed=seed,
                       subdir=subdir, changed_since=changed_since,
                       only=tuple(r.strip() for r in rows.split(",") if r.strip()), repo_label=label)
    started = time.monotonic()

    def progress(name: str, done: int, total: int) -> None:
        if done == total or done % max(1, total // 10) == 0:
            typer.echo(f"  {name}: {done}/{total} holes ({time.monotonic() - started:.0f} s)", err=True)

    summary = evaluate_repo(engine, root, output, data_dir=data, options=opts, progress=progress, config=cfg,
                            compare_engine=compare, previous=output / "holes.jsonl" if resume else None,
                            sweep=sweep)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in summary.items() if k not in ("per_hole", "table")}, indent=1))
    else:
        meta = summary["meta"]
        typer.echo(f"{meta['repo']} · model {meta['model']}"
                   + (f" · compared with {meta['compare_model']}" if meta["compare_model"] else "")
                   + f" · {', '.join(f'{n} {k}' for k, n in meta['holes'].items())} holes in {meta['test_files']} "
                   "held-out files"
                   + (f" (changed since {meta['changed_since']})" if meta["changed_since"] else "")
                   + " · categories " + ", ".join(f"{c} {n}" for c, n in meta["categories"].items())
                   + f" · layout {meta['context_format']}")
        typer.echo(summary["table"])
        typer.echo(f"wrote {output}/eval.json, eval.png, holes.jsonl")
