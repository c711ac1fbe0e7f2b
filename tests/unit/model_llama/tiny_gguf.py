"""Write the tiny random Qwen2 model (``tests/tiny_model.py``) as a float32 GGUF that llama.cpp loads.

No llama.cpp converter ships in a wheel, so this writes the handful of keys and tensors a Qwen2
GGUF needs with the ``gguf`` package, named as llama.cpp's ``convert_hf_to_gguf.py`` names them:
hyper-parameters under ``qwen2.*``, the byte-level BPE vocabulary (``tokenizer.ggml.model = gpt2``,
pre-tokenizer ``gpt-2``: the tiny tokenizer uses GPT-2's ByteLevel split), and f32 tensors (exact,
so greedy tokens must equal the fp32 torch reference). Tied embeddings: no ``output.weight``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_tiny_gguf(model_dir: Path, dest: Path) -> Path:
    import gguf
    from safetensors.numpy import load_file

    model_dir, dest = Path(model_dir), Path(dest)
    cfg = json.loads((model_dir / "config.json").read_text())
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    tensors = load_file(str(model_dir / "model.safetensors"))
    w = gguf.GGUFWriter(str(dest), "qwen2")
    w.add_name("tiny-qwen2")
    w.add_context_length(int(cfg["max_position_embeddings"]))
    w.add_embedding_length(int(cfg["hidden_size"]))
    w.add_block_count(int(cfg["num_hidden_layers"]))
    w.add_feed_forward_length(int(cfg["intermediate_size"]))
    w.add_head_count(int(cfg["num_attention_heads"]))
    w.add_head_count_kv(int(cfg["num_key_value_heads"]))
    w.add_rope_freq_base(float(cfg.get("rope_theta") or 10000.0))
    w.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    # vocabulary: ids in order, special tokens marked as control tokens
    vocab: dict[str, int] = dict(tok["model"]["vocab"])
    specials = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    vocab.update(specials)
    n_vocab = int(cfg["vocab_size"])
    tokens = [f"[PAD{i}]" for i in range(n_vocab)]
    types = [gguf.TokenType.UNUSED] * n_vocab
    for text, i in vocab.items():
        tokens[i] = text
        types[i] = gguf.TokenType.CONTROL if text in specials else gguf.TokenType.NORMAL
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(int(cfg["eos_token_id"]))
    w.add_pad_token_id(int(cfg["pad_token_id"]))
    w.add_add_bos_token(False)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, int(cfg["num_hidden_layers"]))
    for key in sorted(tensors):
        if key == "lm_head.weight":
            continue  # tied to the embeddings
        base, _, suffix = key.rpartition(".")
        name = names.get_name(base)
        if name is None:
            raise ValueError(f"no GGUF name for {key}")
        w.add_tensor(f"{name}.{suffix}", np.ascontiguousarray(tensors[key], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dest
