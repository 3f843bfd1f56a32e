"""Neural voice converters: Mimi-VC (kNN-VC over Kyutai's Mimi codec latents) and kNN-VC (WavLM +
HiFi-GAN from RAVAS's ONNX checkpoints).

Data flow: the user's weights (``ravasd models fetch mimi`` / ``models add``) → ONNX graphs with
explicit streaming state in the user cache (:mod:`.install`; torch only here, the ``torch`` extra) →
onnxruntime at run time (:mod:`.mimi`, :mod:`.knnvc`; no torch) with a target pool
(:mod:`.pools`, built by ``ravasd voices build`` or imported from RAVAS). :mod:`.registry` lists
the neural voices, available or not, for ``voices list``, ``doctor`` and the voice registry.
"""
