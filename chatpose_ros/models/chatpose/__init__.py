"""The 'chatpose' profile: a LLaVA-1.5-style ChatPose model (CLIP tower, projector, Llama with a
pose token, pose head), its checkpoints, vision backends, pipeline and tools.

Nothing heavy is imported here; import the submodules you need:
`model`, `tokenizer`, `checkpoints`, `vision_backends`, `export`, `pipeline`, `train`, `evaluate`,
`bench_decoding`.
"""
