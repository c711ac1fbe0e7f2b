"""Build a tiny random-weight Qwen2-architecture model with a real FIM tokenizer.

Used by tests and benchmarks on both backends: a byte-level BPE trained on a little code,
with Qwen2.5-Coder's special tokens, and a 2-layer Qwen2 model (hidden 64). It loads with
transformers (torch) and mlx-lm alike. Weights are random but seeded, so runs repeat.
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
]

_CORPUS = '''
def add(a, b):
    """Return the sum."""
    return a + b

class Config:
    def __init__(self, path):
        self.path = path
        self.values = {}

    def load(self):
        with open(self.path) as f:
            for line in f:
                key, _, value = line.partition("=")
                self.values[key.strip()] = value.strip()
        return self.values

import logging
logger = logging.getLogger(__name__)

function greet(name: string): string {
  return `hello ${name}`;
}

func main() {
    fmt.Println("hello")
}

fn main() { println!("hi"); }

public class Main { public static void main(String[] args) { System.out.println("x"); } }
'''


def build_tiny_model(dest: Path, *, vocab_size: int = 512, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Write a loadable HF folder (config.json, model.safetensors, tokenizer files) to ``dest``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    fast.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    fast.save_pretrained(dest)
    n_vocab = len(fast)
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=n_vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        eos_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=None,
        pad_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
    )
    model = Qwen2ForCausalLM(cfg)
    # Larger init than default so logits differ visibly between adapters/backends in tests.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.08)
    model.save_pretrained(dest, safe_serialization=True)
    # transformers 5 nests rope_theta under rope_parameters; stock mlx-lm (and mlx_lm.server)
    # read the top-level key and silently assume 1e6 without it.
    cfg_path = dest / "config.json"
    saved = json.loads(cfg_path.read_text())
    saved["rope_theta"] = 10000.0
    cfg_path.write_text(json.dumps(saved, indent=2))
    (dest / "mochi_tiny.json").write_text(json.dumps({"seed": seed, "vocab": n_vocab}))
    return dest
