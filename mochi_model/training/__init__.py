"""LoRA training (torch + accelerate; MLX via mlx-lm tuner)."""
