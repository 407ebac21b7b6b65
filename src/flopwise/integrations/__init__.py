"""Where training loops live: callbacks that log flopwise's FLOPs, TFLOP/s and MFU into a trainer's own logs.

`flopwise.integrations.hf.FlopwiseCallback` (transformers `Trainer`) and
`flopwise.integrations.lightning.FlopwiseCallback` (Lightning `Trainer`); each imports its framework only when
it is imported itself.
"""
