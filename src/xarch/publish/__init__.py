"""Publishing: pushing per-arch images and multi-arch indexes, the fan-out form of it
(``push-arch``/``push-index``), pulling by digest, and keeping pins current."""
