"""Pure math on numpy/torch arrays: spectral volumes, normalization, loops, procedural motion.

No Qt, no nn.Module, no file formats beyond the Motion .npz.
"""
