"""Model presets: per-backend repo ids, canonical base id, memory needs and FIM format.

``mochi models`` lists them. The canonical ``base_id`` is what adapters record as their base model,
so an adapter trained on the torch weights also matches the MLX conversion of the same model.
Memory figures are approximate resident sizes of the weights as loaded by each backend, plus the
RAM we recommend for the machine (weights + KV cache + editor + OS).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mochi_model.errors import ModelNotFound

DEFAULT_PRESET = "qwen2.5-coder-0.5b"


@dataclass(frozen=True, kw_only=True)
class Preset:
    name: str
    base_id: str  # canonical id recorded in adapters
    repos: dict[str, str]  # backend -> hub repo id
    params_b: float  # billions of parameters
    weights_gb: dict[str, float]  # backend -> approximate weights in memory
    recommended_ram_gb: int
    fim: str | None  # FIM format name (mochi_model.fim), None = prefix-only
    offline: str | None = None  # offline source name (mochi_model.offline), if any
    notes: str = ""
    revision: dict[str, str] = field(default_factory=dict)  # backend -> pinned revision ("" = main)
    gguf_file: str | None = None  # file pattern in repos["llama"] (the quantization llama.cpp loads)


def _qwen25(size: str, params: float, bf16_gb: float, mlx_gb: float, ram: int, offline: str | None = None,
            q4_gb: float = 0.0) -> Preset:
    base = f"Qwen/Qwen2.5-Coder-{size.upper()}-Instruct"
    return Preset(
        name=f"qwen2.5-coder-{size}", base_id=base,
        repos={"torch": base, "mlx": f"mlx-community/Qwen2.5-Coder-{size.upper()}-Instruct-4bit", "remote": base,
               "llama": f"{base}-GGUF"},
        params_b=params, weights_gb={"torch": bf16_gb, "mlx": mlx_gb, "remote": 0.0, "llama": q4_gb},
        recommended_ram_gb=ram, fim="qwen", offline=offline, gguf_file=f"qwen2.5-coder-{size}-instruct-q4_k_m*.gguf",
        notes="FIM + repo-level tokens; instruct model (stop sequences and trimming matter)")


PRESETS: dict[str, Preset] = {p.name: p for p in [
    _qwen25("0.5b", 0.49, 1.0, 0.3, 4, offline="qwen2.5-coder-0.5b-q4km", q4_gb=0.49),
    _qwen25("1.5b", 1.5, 3.1, 0.9, 8, offline="qwen2.5-coder-1.5b-q4km", q4_gb=1.1),
    _qwen25("3b", 3.1, 6.2, 1.8, 12, q4_gb=2.1),
    _qwen25("7b", 7.6, 15.2, 4.3, 24, q4_gb=4.7),
    Preset(name="qwen3-coder", base_id="Qwen/Qwen3-Coder-30B-A3B-Instruct",
           repos={"mlx": "mlx-community/Qwen3-Coder-30B-A3B-Instruct-4bit", "torch": "Qwen/Qwen3-Coder-30B-A3B-Instruct",
                  "remote": "Qwen/Qwen3-Coder-30B-A3B-Instruct"},
           params_b=30.5, weights_gb={"mlx": 17.2, "torch": 61.0, "remote": 0.0}, recommended_ram_gb=64, fim="qwen",
           notes="MoE, 3B active; 4-bit MLX on Apple Silicon (~64 GB machine recommended)"),
    Preset(name="gpt-oss", base_id="openai/gpt-oss-20b",
           repos={"mlx": "mlx-community/gpt-oss-20b-MXFP4-Q8", "torch": "openai/gpt-oss-20b", "remote": "openai/gpt-oss-20b"},
           params_b=21.0, weights_gb={"mlx": 12.1, "torch": 13.8, "remote": 0.0}, recommended_ram_gb=32, fim=None,
           notes="8-bit MLX; no FIM tokens: prefix-only completion"),
]}


def get_preset(name: str | None) -> Preset:
    """Look up a preset by name (None → the default)."""
    key = (name or DEFAULT_PRESET).lower()
    try:
        return PRESETS[key]
    except KeyError:
        raise ModelNotFound(f"unknown model preset {name!r}; run `mochi models` to list them "
                            f"({', '.join(PRESETS)}) or set [model] path") from None


def preset_for_model_id(model_id: str) -> Preset | None:
    """The preset whose base model ``model_id`` is (any backend's repo or a GGUF file name)."""
    from mochi_model.adapters.format import normalize_model_id

    want = normalize_model_id(model_id)
    for p in PRESETS.values():
        ids = {normalize_model_id(p.base_id), *(normalize_model_id(r) for r in p.repos.values())}
        if want in ids:
            return p
    return None


def memory_table(backend: str = "torch") -> list[dict[str, object]]:
    """Rows for ``mochi models``: memory needs, FIM format, and which copies are already downloaded."""
    from mochi_model.sources import local_copies  # sources imports this module

    rows = []
    for p in PRESETS.values():
        rows.append({"name": p.name, "default": p.name == DEFAULT_PRESET, "params_b": p.params_b,
                     "repo": p.repos.get(backend, ""), "weights_gb": p.weights_gb.get(backend),
                     "recommended_ram_gb": p.recommended_ram_gb, "fim": p.fim or "prefix-only",
                     "offline": bool(p.offline), "downloaded": local_copies(p, backend), "notes": p.notes})
    return rows
