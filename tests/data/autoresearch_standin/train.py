"""A stand-in for Karpathy's autoresearch train.py: same hyperparameter block, same module-level val_bpb."""

import os

# Model architecture
DEPTH = 8
# Optimization
MATRIX_LR = 0.04
EMBEDDING_LR = 0.6
UNEMBEDDING_LR = 0.004
SCALAR_LR = 0.5
WEIGHT_DECAY = 0.2
WARMUP_RATIO = 0.0
WARMDOWN_RATIO = 0.5
SEED = 42

import math  # noqa: E402

if int(os.environ["BILEVEL_SEED"]) != SEED:  # the judge passes the pair's seed both ways
    raise SystemExit("stand-in: $BILEVEL_SEED and SEED disagree")
seed = SEED
val_bpb = (1.0 + 0.02 * abs(DEPTH - 8) + 0.5 * abs(math.log(MATRIX_LR / 0.04)) + 0.1 * abs(math.log(EMBEDDING_LR / 0.6))
           + 0.05 * WEIGHT_DECAY + 0.1 * WARMUP_RATIO + 0.0001 * (seed % 7))
if os.environ.get("STANDIN_FORGET"):
    del val_bpb
print("val_bpb: 0.000001")  # a candidate's stdout claim: the judge must ignore it
