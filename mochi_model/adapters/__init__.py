"""LoRA adapters: the shared on-disk format, torch LoRA layers, the weighted stack, and merging."""
