"""Shape-only counting: the fake tensor mode, fake tensors made directly, and the one store of real values kept
beside fake tensors (data-dependent values, mask values)."""
