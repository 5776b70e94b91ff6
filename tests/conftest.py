"""Shared pytest set-up for the pglib tests."""

import torch

# The tests use tiny tensors, for which torch's intra-op threads cost far more than they
# save (on a busy 2-core machine a 9x5 softmax took milliseconds). One thread keeps the
# suite fast and its floating-point results independent of the machine's core count.
torch.set_num_threads(1)
